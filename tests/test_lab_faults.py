"""Faults on the lab: a URL the hosts cannot reach stops the run before
anything changes; a dpkg lock held by another process is waited for, then
fails with apt's message; a crashed vLLM is restarted by systemd and serves
again; a deploy killed midway converges when run again, and a changed port
restarts only vLLM. Nothing is lost.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from armada.lab import hosts as lab
from armada.lab.client import completion_tokens
from conftest import ROOT
from test_lab_deploy import HEALTH_OP, changed_operations

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

PYINFRA = os.path.join(os.path.dirname(sys.executable), "pyinfra")
SERVE = lab.HOSTS_BY_NAME["armada-serve"]
CP = lab.HOSTS_BY_NAME["armada-cp"]
INVENTORY = "tests/lab/faults_inventory.py"
LOCK = ("python3 -c 'import fcntl, time; f = open(\"/var/lib/dpkg/lock-frontend\", \"w\"); "
        "fcntl.lockf(f, fcntl.LOCK_EX); print(\"locked\", flush=True); time.sleep({seconds})'")
# holds the lock until an `apt-get install` (armada's apt.packages, or pyinfra's dry run of it) has waited
# on it for 3 s (the same process still there, the lock still held here), then lets go; says which
WAIT_FOR_APT = r"""
import fcntl, os, time
lock = open("/var/lib/dpkg/lock-frontend", "w")
fcntl.lockf(lock, fcntl.LOCK_EX)
print("locked", flush=True)

def apt_get_installs():
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if os.path.basename(argv[0]) == b"apt-get" and b"install" in argv and state != b"Z":
            pids.add(pid)
    return pids

deadline = time.monotonic() + 240
while time.monotonic() < deadline:
    waiting = apt_get_installs()
    if waiting:
        time.sleep(3)
        still = waiting & apt_get_installs()
        if still:
            print("apt-get", *sorted(still), "waited 3 s on the lock held here", flush=True)
            break
    time.sleep(0.2)
else:
    print("no apt-get install waited on the lock", flush=True)
"""


def command(report, data=None, *extra):
    env = {**os.environ, "ARMADA_TEST_DATA": json.dumps(data or {})}
    argv = [PYINFRA, "-y", INVENTORY, "deploys/llm.py", "--data", f"armada_health_report={report}", *extra]
    return argv, env


def deploy(report, data=None, *extra):
    argv, env = command(report, data, *extra)
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400)
    return result, result.stdout + result.stderr


@pytest.fixture(scope="module")
def converged(deployed_lab):
    """The session's deployed lab (conftest.deployed_lab); each test here puts back what it changed."""
    return deployed_lab


def test_an_unreachable_index_stops_the_run_before_any_change(converged, tmp_path):
    bad = f"http://{lab.GATEWAY}:9/simple"
    result, output = deploy(tmp_path / "url.json", {"torch_index_url": bad}, "--limit", "serving")
    assert result.returncode != 0
    # the first host whose check fails stops the run (pyinfra plans host by host)
    # asked through the lab's proxy: the proxy answers for the server it cannot reach
    assert re.search(rf"host 'armada-serve2?': torch_index_url = '{re.escape(bad)}/torch/': "
                     r"answers HTTP 500 \(through a proxy", output), output[-4000:]
    assert "nothing was changed on any host" in output and "--> Starting operation" not in output


def test_a_held_dpkg_lock_is_waited_for_then_reported(converged, tmp_path):
    # neither package there (a kept lab has both from an earlier session): each run below must install
    status, _, err = lab.ssh_exec(SERVE, "DEBIAN_FRONTEND=noninteractive apt-get remove -y jq tree", timeout=180)
    assert status == 0, err[-2000:]
    client = lab.ssh_client(SERVE)
    try:
        # held until apt-get has waited on it (up to 120 s allowed): the run goes on once it is free
        _, holder, _ = client.exec_command(f"python3 -c {shlex.quote(WAIT_FOR_APT)}", timeout=300)
        assert holder.readline().strip() == "locked"
        result, output = deploy(tmp_path / "wait.json", {"armada_apt_lock_timeout": 120, "armada_packages": ["jq"]},
                                "--limit", "armada-serve")
        assert result.returncode == 0, output[-6000:]
        held = holder.read().decode(errors="replace")
        assert "waited 3 s on the lock held here" in held, held  # apt met the lock, and waited
        assert lab.ssh_exec(SERVE, "command -v jq")[0] == 0
        # held for longer than the wait: apt's own message, naming the holder
        client.exec_command(LOCK.format(seconds=120))
        time.sleep(2)
        result, output = deploy(tmp_path / "held.json", {"armada_apt_lock_timeout": 5, "armada_packages": ["jq", "tree"]},
                                "--limit", "armada-serve")
        assert result.returncode != 0
        assert "Could not get lock /var/lib/dpkg/lock-frontend" in output and "python3" in output, output[-4000:]
    finally:
        lab.ssh_exec(SERVE, "pkill -f 'fcntl.lockf' || true")
        client.close()
    result, output = deploy(tmp_path / "after.json", {"armada_packages": ["jq", "tree"]}, "--limit", "armada-serve")
    assert result.returncode == 0, output[-6000:]


def test_a_crashed_vllm_is_restarted_and_serves(converged, tmp_path):
    before = lab.ssh_exec(SERVE, "systemctl show -p MainPID --value armada-vllm")[1].strip()
    assert before not in ("", "0")
    assert lab.ssh_exec(SERVE, f"kill -9 {before}")[0] == 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = lab.ssh_exec(SERVE, "systemctl show -p MainPID --value armada-vllm")[1].strip()
        if now not in ("", "0", before):
            break
        time.sleep(2)
    assert now not in ("", "0", before), "systemd did not restart armada-vllm"
    assert "Restarts=1" in lab.ssh_exec(SERVE, "systemctl show -p NRestarts armada-vllm")[1].replace("NRestarts", "Restarts")
    result = subprocess.run([PYINFRA, "-y", INVENTORY, "deploys/health.py", "--limit", "armada-serve",
                             "--data", f"armada_health_report={tmp_path / 'health.json'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert json.loads((tmp_path / "health.json").read_text())["armada-serve"]["ok"]


def test_a_deploy_killed_midway_converges_when_run_again(converged, tmp_path, testinfra_host):
    """A changed vLLM port (new env, restart, health wait), the deploy killed as vLLM restarts, then run again:
    it does what was left, and a changed port restarts only vLLM (the rerun has the control plane in it: no
    nats or etcd operation changes, nats keeps its process). One serving host: a vLLM restart is ~30 s on the
    lab's two cores, two at once twice that."""
    cp = testinfra_host(CP)
    nats_pid = cp.check_output("systemctl show -p MainPID --value armada-nats")
    argv, env = command(tmp_path / "killed.json", {"vllm_port": 8002}, "--limit", "armada-serve")
    run = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    seen, killed = "", False
    for line in run.stdout:
        seen += line
        if "Starting operation: armada vllm service | armada-vllm: restart on change" in line:
            os.killpg(run.pid, signal.SIGKILL)
            killed = True
            break
    run.wait()
    seen += run.stdout.read()
    # killed here, before it finished: by this signal, with no results table (a finished run's table
    # names the same operation)
    assert killed and run.returncode == -signal.SIGKILL, (run.returncode, seen[-3000:])
    assert "--> Results:" not in seen, seen[-3000:]
    assert "Starting operation: armada vllm service | vLLM command (of this install)" in seen, seen[-3000:]
    result, output = deploy(tmp_path / "again.json", {"vllm_port": 8002}, "--limit", CP.name, "--limit", SERVE.name)
    assert result.returncode == 0, output[-6000:]
    changed = changed_operations(output)
    assert not [op for op in changed if "nats" in op or "etcd" in op], changed
    assert cp.check_output("systemctl show -p MainPID --value armada-nats") == nats_pid
    # the rerun did what was left: vLLM serves on the new port (its health checks asked there; so does this machine)
    assert json.loads((tmp_path / "again.json").read_text())["armada-serve"]["ok"], output[-6000:]
    assert testinfra_host(SERVE).socket("tcp://0.0.0.0:8002").is_listening
    assert completion_tokens(SERVE.address, 8002) > 0
    result, output = deploy(tmp_path / "noop.json", {"vllm_port": 8002}, "--limit", "armada-serve")
    assert result.returncode == 0 and set(changed_operations(output)) <= {HEALTH_OP}, changed_operations(output)
    # back to the lab's port for the tests that follow: vLLM's command and its restart, nothing else; the
    # model cache never moved
    result, output = deploy(tmp_path / "back.json", None, "--limit", "armada-serve")
    assert result.returncode == 0, output[-6000:]
    changed = changed_operations(output)
    assert "armada-vllm: restart on change" in changed and "vLLM command (of this install)" in changed, changed
    assert lab.ssh_exec(SERVE, "test -f /var/lib/armada/models/tiny/model.safetensors")[0] == 0


def test_a_full_or_read_only_model_disk_stops_the_run_before_any_change(converged, tmp_path):
    assert lab.ssh_exec(SERVE, "mkdir -p /srv/tiny && mount -t tmpfs -o size=64k tmpfs /srv/tiny")[0] == 0
    try:
        result, output = deploy(tmp_path / "full.json", {"model_cache_dir": "/srv/tiny/models"}, "--limit", "armada-serve")
        assert result.returncode != 0
        assert "host 'armada-serve': model_cache_dir = '/srv/tiny/models': 64 KiB free at /srv/tiny" in output, output[-4000:]
        assert "--> Starting operation" not in output
        assert lab.ssh_exec(SERVE, "mount -o remount,ro /srv/tiny")[0] == 0
        result, output = deploy(tmp_path / "ro.json", {"model_cache_dir": "/srv/tiny/models"}, "--limit", "armada-serve")
        assert result.returncode != 0 and "/srv/tiny is on a read-only filesystem" in output, output[-4000:]
        assert "--> Starting operation" not in output
    finally:
        lab.ssh_exec(SERVE, "umount /srv/tiny")


def test_a_host_that_is_down_is_named_and_the_others_finish(converged, tmp_path):
    serve2 = lab.HOSTS_BY_NAME["armada-serve2"]
    lab.stop_host(serve2)
    try:
        result, output = deploy(tmp_path / "down.json")
        assert result.returncode != 0, output[-4000:]
        entries = json.loads((tmp_path / "down.json").read_text())
        assert entries["armada-cp"]["ok"] and entries["armada-serve"]["ok"], output[-4000:]
        assert not entries["armada-serve2"]["ok"]
        assert entries["armada-serve2"]["checks"][0]["seen"] == "could not connect"
    finally:
        lab.power_on(serve2)  # back on, with its own disk


def test_a_host_lost_midway_fails_the_run_and_a_rerun_converges(converged, tmp_path):
    """pyinfra 3 aborts the whole run when an SSH connection dies during an
    operation (paramiko's EOFError, pyinfra-dev/pyinfra#1220): the report then
    keeps every host as not reaching its health checks (none is reported
    healthy by mistake), the exit code is non-zero, and once the host is back
    on (its own disk, as a machine that lost power: a dpkg stopped midway is
    finished by the base role) the same command converges everything. (Last
    in this module.)"""
    serve2 = lab.HOSTS_BY_NAME["armada-serve2"]
    report = tmp_path / "lost.json"
    argv, env = command(report, {"armada_packages": ["jq"]})
    run = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    for line in run.stdout:
        output += line
        if "Starting operation: armada base | base packages" in line:
            lab.stop_host(serve2)  # pulled out mid-run
    run.wait(timeout=2400)
    lab.power_on(serve2)  # back on, with the disk it had when it was pulled
    assert run.returncode != 0, output[-4000:]
    entries = json.loads(report.read_text())
    assert set(entries) == {"armada-cp", "armada-serve", "armada-serve2"}
    assert not entries["armada-serve2"]["ok"]
    result, output = deploy(tmp_path / "rerun.json", {"armada_packages": ["jq"]})
    assert result.returncode == 0, output[-6000:]
    assert all(entry["ok"] for entry in json.loads((tmp_path / "rerun.json").read_text()).values())
