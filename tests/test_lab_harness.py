"""The lab harness itself, on real hosts: up -> status -> pyinfra -> lab network -> proxy -> down.

Needs root, debootstrap, qemu-user-static, binfmt-support, systemd-container and
tinyproxy; the first run builds the rootfs caches (minutes), later runs reuse them.
Run with ``pytest -m lab tests/test_lab_harness.py``.
"""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from armada.lab import hosts as lab
from conftest import LAB_UP_TIMINGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYINFRA = os.path.join(os.path.dirname(sys.executable), "pyinfra")

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

CP = lab.HOSTS_BY_NAME["armada-cp"]
SERVE = lab.HOSTS_BY_NAME["armada-serve"]


@pytest.fixture(scope="module")
def lab_up(lab_hosts):
    """The session's lab (conftest.lab_hosts), still bare: conftest.LAB_ORDER
    runs this module first, so taking it down and up again costs seconds."""
    return lab.up()


def test_status_after_up(lab_up):
    rows = {row["name"]: row for row in lab.status()}
    assert set(rows) == {"armada-cp", "armada-serve", "armada-serve2"}
    for host in lab.HOSTS:
        assert rows[host.name]["running"], rows[host.name]
        assert rows[host.name]["ssh"], rows[host.name]
        assert rows[host.name]["address"] == host.address
    # systemd's state on armada-cp: as the session's up saw it boot, or now
    # when the lab was already up before this session
    booted = LAB_UP_TIMINGS.get("hosts", {}).get("armada-cp")
    state = booted["state"] if booted else lab.ssh_exec(CP, "systemctl is-system-running")[1].strip()
    assert state in ("running", "degraded"), (state, LAB_UP_TIMINGS)


def test_up_is_idempotent(lab_up):
    before = {row["name"]: row["pid"] for row in lab.status()}
    again = lab.up(log=lambda _: None)
    assert again["hosts"] == {}  # nothing booted
    assert {row["name"]: row["pid"] for row in lab.status()} == before


def test_pyinfra_reaches_both_arches(lab_up):
    result = subprocess.run(
        [PYINFRA, "-y", "inventories/local.py", "exec", "--", "uname", "-m"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # pyinfra pads host names: "[armada-cp]    aarch64"
    assert re.search(r"^\[armada-cp\]\s+aarch64$", out, re.M), out
    assert re.search(r"^\[armada-serve\]\s+x86_64$", out, re.M), out


def test_serve_reaches_cp_over_lab_network(lab_up):
    code, out, err = lab.ssh_exec(SERVE, f"bash -c 'echo > /dev/tcp/{CP.address}/22' && getent hosts armada-cp")
    assert code == 0, out + err
    assert CP.address in out


@pytest.mark.parametrize("host", [CP, SERVE], ids=lambda h: h.name)
def test_egress_through_proxy(lab_up, host):
    # proxy only through env here: configuring it inside the host is the base role's job
    script = textwrap.dedent("""
        import sys, urllib.request
        req = urllib.request.Request("http://deb.debian.org/debian/dists/bookworm/Release", method="HEAD")
        with urllib.request.urlopen(req, timeout=float(sys.argv[1])) as resp:
            print(resp.status)
    """)
    env = f"http_proxy={lab.PROXY_URL} https_proxy={lab.PROXY_URL}"
    code, out, err = lab.ssh_exec(host, f"{env} python3 -c '{script}' 60", timeout=120)
    assert code == 0 and out.strip() == "200", out + err
    # and without the proxy there is no way out (only the bridge is reachable; 3 s is plenty on the bridge)
    code, out, err = lab.ssh_exec(host, f"timeout 30 python3 -c '{script}' 3", timeout=60)
    assert code != 0, out


def test_down_leaves_nothing(lab_up):
    lab.down()
    try:
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for host in lab.HOSTS:
            assert host.netns not in netns
            assert not lab.is_running(host)
            assert not os.path.exists(lab.rootfs_path(host))
        procs = subprocess.run(["ps", "-eo", "stat=,comm="], capture_output=True, text=True).stdout.splitlines()
        live = [line for line in procs if not line.startswith("Z")]
        assert not [line for line in live if "systemd-nspawn" in line or "tinyproxy" in line], live
        assert subprocess.run(["ip", "link", "show", lab.BRIDGE], capture_output=True).returncode != 0
        assert os.path.exists(lab.cache_path("arm64")) and os.path.exists(lab.cache_path("amd64"))
        assert os.path.exists(lab.key_path())
    finally:
        lab.up(log=lambda _: None)  # the session's lab back; proves up-after-down from cache
