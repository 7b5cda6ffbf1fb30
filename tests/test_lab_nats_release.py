"""nats-server from a release tarball, for real: the lab harness makes a
tarball the way NATS publishes them from the real arm64 nats-server binary on
armada-cp and serves it on the lab bridge (armada.lab.static, LAB ONLY);
armada-cp switches to it by sha256, a wrong sha256 is refused before anything
is installed, and the distro package comes back afterwards.

Runs on the session's deployed lab; leaves armada-cp on the distro's nats.
"""

import hashlib
import io
import os
import tarfile

import pytest
from conftest import run_main_deploy

from armada.lab import hosts as lab
from armada.lab.layout import rootfs_path
from armada.lab.static import LabFiles

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

CP = lab.HOSTS_BY_NAME["armada-cp"]
TARBALL = "nats-server-lab-linux-arm64.tar.gz"
WRONG = "f" * 64  # (pyinfra's --data reads an all-digit value as a number)


def make_release(folder) -> str:
    """A release tarball (one top folder holding nats-server, as NATS' own) of the real binary; its sha256."""
    with open(os.path.join(rootfs_path(CP), "usr/sbin/nats-server"), "rb") as handle:
        binary = handle.read()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        entry = tarfile.TarInfo("nats-server-lab-linux-arm64/nats-server")
        entry.size, entry.mode = len(binary), 0o755
        tar.addfile(entry, io.BytesIO(binary))
    with open(os.path.join(folder, TARBALL), "wb") as handle:
        handle.write(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def nats_binary(cp) -> str:
    """The program armada-nats runs: its command line's first word (armada-cp is emulated: there
    qemu-user runs it, and binfmt's P flag puts qemu's wrapper first, then the program)."""
    pid = cp.check_output("systemctl show -p MainPID --value armada-nats").strip()
    args = cp.check_output(f"tr '\\0' '\\n' < /proc/{pid}/cmdline").split()
    return args[1] if "binfmt" in args[0] or "qemu" in args[0] else args[0]


def test_nats_from_a_release_tarball_by_sha256(deployed_lab, testinfra_host, tmp_path):
    cp = testinfra_host(CP)
    assert nats_binary(cp) == "/usr/sbin/nats-server"
    sha = make_release(tmp_path)
    files = LabFiles(str(tmp_path)).start()
    url = f"{files.url}/{TARBALL}"
    release = ["--limit", CP.name, "--data", "nats_source=release", "--data", f"nats_release_url={url}"]
    try:
        # 1. a wrong sha256: refused before any change, naming host, key and the sha256 it found
        result, output = run_main_deploy(tmp_path / "wrong.json", *release, "--data", f"nats_release_sha256={WRONG}")
        assert result.returncode != 0
        assert f"host 'armada-cp': nats_release_sha256 = '{WRONG}'" in output and f"has sha256 {sha}" in output, \
            output[-3000:]
        assert not cp.file("/opt/armada/nats").exists and nats_binary(cp) == "/usr/sbin/nats-server"

        # 2. the right one: unpacked into its own folder, nats restarted on it, health green
        result, output = run_main_deploy(tmp_path / "right.json", *release, "--data", f"nats_release_sha256={sha}")
        assert result.returncode == 0, output[-6000:]
        assert nats_binary(cp) == f"/opt/armada/nats/{sha[:12]}/nats-server"
        assert cp.file("/var/lib/armada/nats/jetstream").is_directory  # the store is kept
        assert any(path.endswith(TARBALL) for path in files.requests)
    finally:
        files.stop()
        # 3. back to the distro's package (the modules after this one expect it)
        result, output = run_main_deploy(tmp_path / "back.json", "--limit", CP.name)
        assert result.returncode == 0, output[-6000:]
    assert nats_binary(cp) == "/usr/sbin/nats-server"
