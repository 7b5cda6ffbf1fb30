import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
