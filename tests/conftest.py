# pyinfra's CLI package gevent-monkey-patches the stdlib when first imported;
# done in the middle of a session (after threads and import locks exist) the
# import fails with "cannot release un-acquired lock". Patch first, as the
# pyinfra command does.
import pyinfra_cli  # noqa: F401  isort: skip

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "scenarios"))  # the shared testinfra checks


def pytest_ignore_collect(collection_path, config):
    # a scenario's verify step runs only inside its lifecycle (armada lab scenario NAME verify)
    if collection_path.name == "test_verify.py" and "ARMADA_SCENARIO" not in os.environ:
        return True
    return None
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
HOSTS = os.path.join(FIXTURES, "hosts")
HOST_NAMES = sorted(d for d in os.listdir(HOSTS) if os.path.isdir(os.path.join(HOSTS, d)))


def host_dir(name: str) -> str:
    return os.path.join(HOSTS, name)


def fixture_text(*parts: str) -> str:
    with open(os.path.join(FIXTURES, *parts), encoding="utf-8") as handle:
        return handle.read()


def armada(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    """Run the installed console script, as a user would."""
    exe = shutil.which("armada", path=os.path.dirname(sys.executable)) or shutil.which("armada")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def torch_venv(tmp_path_factory):
    """A real venv holding a real CPU torch (the 2.13.0 wheel this machine kind carries)."""
    venv = tmp_path_factory.mktemp("torchvenv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "torch==2.13.0"], capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        pytest.fail(f"could not install torch==2.13.0 into a test venv:\n{result.stderr[-2000:]}")
    return str(venv)


@pytest.fixture(scope="session")
def lab_hosts():
    """The local lab, up for the whole session, down at its end."""
    from armada.lab import hosts as lab

    lab.up()
    yield lab
    lab.down()


@pytest.fixture(scope="session")
def testinfra_host(lab_hosts):
    """testinfra hosts over SSH (paramiko), with the lab's key and known_hosts."""
    import testinfra

    cache = {}

    def get(lab_host):
        if lab_host.name not in cache:
            cache[lab_host.name] = testinfra.get_host(
                f"paramiko://root@{lab_host.address}",
                ssh_identity_file=lab_hosts.key_path(),
            )
        return cache[lab_host.name]

    return get
