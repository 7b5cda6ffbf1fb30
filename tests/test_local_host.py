"""The facts, snapshot and deploy entry on a real host: this machine, through
pyinfra's @local connector (the same code paths as @ssh)."""

import json
import os
import subprocess
import sys

import pytest
from pyinfra.api import Config, State
from pyinfra.api.connect import connect_all

from armada.facts.cpu import Cpu, Memory
from armada.facts.gpu import NvidiaSmi, PciDevices
from armada.facts.host import HostSnapshot
from armada.facts.system import OsRelease
from armada.facts.torch import VenvDistributions, VenvTorch
from armada.inventory import load_inventory
from conftest import ROOT, armada


@pytest.fixture(scope="module")
def local_host():
    inventory = load_inventory("@local")
    state = State(inventory, Config())
    connect_all(state)
    return inventory.get_host("@local")


def test_host_facts_on_this_machine(local_host):
    host_facts = local_host.get_fact(HostSnapshot)
    assert host_facts.cpu.arch == os.uname().machine
    assert host_facts.cpu.logical_cpus == os.cpu_count()
    assert host_facts.memory.total_bytes > 0
    with open("/etc/os-release") as handle:
        assert f"ID={host_facts.os.id}" in handle.read().replace('"', "")
    # every PCI function of /sys is listed
    assert len(host_facts.pci) == len(os.listdir("/sys/bus/pci/devices"))


def test_single_facts_agree_with_the_combined_one(local_host):
    combined = local_host.get_fact(HostSnapshot)
    assert local_host.get_fact(Cpu) == combined.cpu
    assert local_host.get_fact(OsRelease) == combined.os
    assert local_host.get_fact(PciDevices) == combined.pci
    assert local_host.get_fact(Memory).total_bytes == combined.memory.total_bytes


def test_absent_nvidia_smi_is_empty_not_an_error(local_host):
    if os.path.exists("/usr/bin/nvidia-smi"):
        pytest.skip("this machine has nvidia-smi")
    assert local_host.get_fact(NvidiaSmi) == ()


def test_torch_fact_missing_venv_is_none(local_host, tmp_path):
    assert local_host.get_fact(VenvTorch, venv=str(tmp_path / "no-venv")) is None


def test_torch_fact_reads_a_real_cpu_build(local_host, torch_venv):
    build = local_host.get_fact(VenvTorch, venv=torch_venv)
    assert build.version.startswith("2.13.0") and build.cuda is None
    assert not build.cuda_available and build.device_count == 0
    assert build.path.startswith(torch_venv)


def test_snapshot_then_profile(tmp_path):
    result = armada("snapshot", "@local", str(tmp_path))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "@local"
    for name in ("lscpu.txt", "cpuinfo.txt", "meminfo.txt", "os-release.txt", "pci.txt"):
        assert (folder / name).stat().st_size > 0, name
    assert not (folder / "nvidia-smi.csv").exists() or os.path.exists("/usr/bin/nvidia-smi")
    first = (folder / "pci.txt").read_text().split()
    assert first[1].startswith("0x") and first[2].startswith("0x")
    profile = armada("profile", str(folder))
    assert profile.returncode == 0, profile.stderr
    data = json.loads(profile.stdout)
    assert data["arch"] == os.uname().machine and data["accelerator"] == "cpu"


def run_deploy(inventory_text, tmp_path):
    inventory = tmp_path / "inventory.py"
    inventory.write_text(inventory_text)
    pyinfra = os.path.join(os.path.dirname(sys.executable), "pyinfra")
    return subprocess.run(
        [pyinfra, "-y", str(inventory), "deploys/llm.py"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_deploy_refuses_bad_data_before_anything_runs(tmp_path):
    result = run_deploy('hosts = [("@local", {"armada_roles": [], "vllm_port": 99999})]\n', tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "host '@local': vllm_port = 99999: must be a TCP port" in output
    assert "nothing was changed on any host" in output
    assert "Beginning operation run" not in output


def test_deploy_refuses_what_the_host_cannot_do(tmp_path):
    result = run_deploy('hosts = [("@local", {"armada_roles": [], "vllm_accelerator": "cuda"})]\n', tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "vllm_accelerator = 'cuda': the host has no NVIDIA GPU" in output
    assert "Beginning operation run" not in output


def test_deploy_logs_each_decision_with_its_reason(tmp_path):
    # no roles: this machine is the developer's own, not a lab host
    result = run_deploy(
        'hosts = [("@local", {"armada_roles": [], "vllm_kvcache_space_gib": 1, '
        f'"armada_health_report": "{tmp_path}/health.json"}})]\n',
        tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "accelerator = 'cpu': no NVIDIA GPU on PCI" in output
    assert "kvcache_space_gib = 1: set by data" in output


def test_venv_distributions_keep_local_labels(local_host, torch_venv, tmp_path):
    installed = local_host.get_fact(VenvDistributions, venv=torch_venv)
    assert installed["torch"] == "2.13.0+cpu"  # pip freeze parsers lose "+cpu"
    assert not any(name.lower().startswith("nvidia-") for name in installed)
    assert local_host.get_fact(VenvDistributions, venv=str(tmp_path / "none")) == {}


def _answering(replies):
    """A real HTTP server on loopback answering ``replies`` (status, body) in
    turn, the last one forever. Returns (url, server)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    served = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = replies[min(len(served), len(replies) - 1)]
            served.append(status)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.served = served
    return f"http://127.0.0.1:{server.server_address[1]}/healthz", server


# what nats-server 2.9 answers when busy: its readiness probe gives itself 1 ms
BUSY_NATS = (503, {"status": "error", "error": "failed to be ready for connections after 1ms: "})


def test_a_moment_of_503_is_asked_again_not_reported(local_host):
    from armada import health

    url, server = _answering([BUSY_NATS, BUSY_NATS, (200, {"status": "ok"})])
    try:
        ok, seen = health.http_json_until(local_host, url, health.nats_healthy, retries=3)
    finally:
        server.shutdown()
    assert ok and seen == {"status": "ok"}
    assert server.served == [503, 503, 200]


def test_a_lasting_503_is_reported_with_what_was_seen(local_host):
    from armada import health

    url, server = _answering([BUSY_NATS])
    try:
        ok, seen = health.http_json_until(local_host, url, health.nats_healthy, retries=3, settle=2)
    finally:
        server.shutdown()
    assert not ok and seen["error"].startswith("failed to be ready")
    assert server.served == [503, 503, 503]


def test_torch_check_reads_torch_and_the_venv_in_one_run(local_host, torch_venv):
    from armada import health
    from armada.schema import with_defaults
    from roleplan import profile_of

    data = with_defaults({"model_path": "/m"})
    check = health.torch_check(local_host, profile_of("x86-lab-vm", data), torch_venv)
    assert check.ok and check.seen == "torch 2.13.0+cpu cuda=None"
    wanted_cuda = profile_of("gb200", with_defaults({"model_path": "/m"}))
    check = health.torch_check(local_host, wanted_cuda, torch_venv)
    assert not check.ok and check.seen == "torch 2.13.0+cpu is a CPU build on a GPU host"


def test_a_venv_without_torch_fails_the_torch_check(local_host, tmp_path):
    from armada import health
    from armada.schema import with_defaults
    from roleplan import profile_of

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    check = health.torch_check(local_host, profile_of("x86-lab-vm", with_defaults({"model_path": "/m"})), str(venv))
    assert not check.ok and check.seen


def test_concurrent_checks_overlap_on_one_host_and_keep_their_order(local_host):
    """Three commands that each wait for the others' files: run one after another they would time out."""
    import tempfile

    from armada import health
    from armada.role_support import run_quiet

    folder = tempfile.mkdtemp()

    def waits_for_all(name):
        script = (f"touch {folder}/{name}; for i in $(seq 100); do "
                  f"[ -e {folder}/a ] && [ -e {folder}/b ] && [ -e {folder}/c ] && echo {name} && exit 0; "
                  "sleep 0.1; done; exit 1")
        return lambda: run_quiet(local_host, f"bash -c '{script}'")

    assert health.concurrently(*(waits_for_all(n) for n in "abc")) == [(True, "a"), (True, "b"), (True, "c")]


def test_a_hosts_concurrent_checks_share_at_most_the_sessions_sshd_allows(local_host):
    """sshd refuses an 11th session on one connection (MaxSessions 10; seen on the lab): more calls than
    MAX_SESSIONS_PER_HOST wait for a free one, and all of them still run."""
    import tempfile

    from armada import health
    from armada.role_support import MAX_SESSIONS_PER_HOST, run_quiet

    folder = tempfile.mkdtemp()

    def one(n):
        script = f"touch {folder}/running-{n}; sleep 0.4; ls {folder} | grep -c running; rm {folder}/running-{n}"
        return lambda: run_quiet(local_host, f"bash -c '{script}'")

    seen = health.concurrently(*(one(n) for n in range(MAX_SESSIONS_PER_HOST + 4)))
    assert all(ok for ok, _ in seen)
    assert max(int(out) for _, out in seen) == MAX_SESSIONS_PER_HOST
