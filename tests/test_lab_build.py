"""Build once per fleet, on the lab: the ``source`` strategy on two x86_64
hosts builds a small real package (tests/fixtures/buildprobe: a C extension
built against the venv's torch, VLLM_TARGET_DEVICE in its version) from a
git repository, on ONE host, publishes the wheel to the wheelhouse on this
machine and installs it on both; a second run builds nothing; a host that
needs the wheel later gets it from the wheelhouse, never a rebuild; a
builder whose compiler is too old is refused before anything is built.
"""

import os
import shutil
import subprocess
import sys

import pytest

from armada.lab import assets
from armada.lab import hosts as lab
from conftest import FIXTURES, ROOT
from armada.lab.scenarios import changed_operations

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

PYINFRA = os.path.join(os.path.dirname(sys.executable), "pyinfra")
SERVE, SERVE2 = lab.HOSTS_BY_NAME["armada-serve"], lab.HOSTS_BY_NAME["armada-serve2"]
BUILD_OP = "build the wheel"
PUBLISH_OP = "publish the wheel to the fleet wheelhouse"


@pytest.fixture(scope="module")
def git_repo(lab_hosts, tmp_path_factory):
    """The package in a real git repository, tagged v0.1.0, served by git-daemon on the lab bridge."""
    base = tmp_path_factory.mktemp("git")
    repo = base / "buildprobe"
    shutil.copytree(os.path.join(FIXTURES, "buildprobe"), repo)
    git = ["git", "-c", "user.name=armada", "-c", "user.email=armada@lab", "-C", str(repo)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "buildprobe 0.1.0"], ["tag", "v0.1.0"]):
        subprocess.run(git + args, check=True)
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}",
                               f"--listen={lab.GATEWAY}", "--port=9418", str(base)])
    yield f"git://{lab.GATEWAY}/buildprobe"
    daemon.terminate()
    daemon.wait(10)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """The fleet wheelhouse on this machine: the lab's torch wheel, and the builds to come."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    assets.ensure_assets()
    for wheel in os.listdir(assets.wheelhouse_path()):
        os.link(os.path.join(assets.wheelhouse_path(), wheel), folder / wheel)
    return folder


def deploy(git_url, wheelhouse, report, **env):
    result = subprocess.run(
        [PYINFRA, "-y", "tests/lab/build_inventory.py", "deploys/llm.py", "--data", f"armada_health_report={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=2400,
        env={**os.environ, "ARMADA_TEST_GIT_URL": git_url, "ARMADA_TEST_WHEELHOUSE": str(wheelhouse), **env},
    )
    return result, result.stdout + result.stderr


def built_wheels(wheelhouse):
    return sorted(p.name for p in (wheelhouse / "builds").glob("*/*.whl")) if (wheelhouse / "builds").exists() else []


def probe(host):
    """Import the installed package in its venv: its build info and its compiled code."""
    code, out, err = lab.ssh_exec(host, "/opt/armada-buildtest/vllm/0.1.0-*/bin/python -c "
                                        "'import armada_buildprobe as p; print(p.TORCH, p.TARGET_DEVICE, p.dot([1,2],[3,4]))'")
    assert code == 0, err
    return out.split()


def test_an_old_compiler_is_refused_before_anything_is_built(git_repo, wheelhouse, tmp_path):
    result, output = deploy(git_repo, wheelhouse, tmp_path / "gcc.json", ARMADA_TEST_MIN_GCC="12.3")
    assert result.returncode != 0
    assert "g++ 12.2.0 is older than 12.3" in output and "vllm_build_min_gcc" in output, output[-4000:]
    assert built_wheels(wheelhouse) == []


def test_built_on_one_host_installed_on_both(git_repo, wheelhouse, tmp_path):
    result, output = deploy(git_repo, wheelhouse, tmp_path / "first.json")
    assert result.returncode == 0, output[-8000:]
    changed = changed_operations(output)
    builds = [op for op in changed if op.startswith(BUILD_OP)]
    assert len(builds) == 1 and changed[builds[0]] == 1 and changed[PUBLISH_OP] == 1, changed
    wheels = built_wheels(wheelhouse)
    assert wheels == ["armada_buildprobe-0.1.0+cpu-cp311-cp311-linux_x86_64.whl"], wheels
    # the first host of the inventory built it; the other never compiled anything
    assert lab.ssh_exec(SERVE, "test -d /opt/armada-buildtest/build")[0] == 0
    assert lab.ssh_exec(SERVE2, "test -e /opt/armada-buildtest/build")[0] != 0
    for host in (SERVE, SERVE2):
        assert probe(host) == ["2.13.0+cpu", "cpu", "11.0"]


def test_second_run_builds_nothing(git_repo, wheelhouse, tmp_path):
    result, output = deploy(git_repo, wheelhouse, tmp_path / "second.json")
    assert result.returncode == 0, output[-8000:]
    changed = changed_operations(output)
    assert not [op for op in changed if op.startswith(BUILD_OP) or "built once per fleet" in op], changed


def test_a_host_needing_it_later_gets_the_published_wheel(git_repo, wheelhouse, tmp_path):
    assert lab.ssh_exec(SERVE2, "rm -rf /opt/armada-buildtest/vllm/0.1.0-*")[0] == 0
    result, output = deploy(git_repo, wheelhouse, tmp_path / "later.json")
    assert result.returncode == 0, output[-8000:]
    changed = changed_operations(output)
    assert not [op for op in changed if op.startswith(BUILD_OP) or op == PUBLISH_OP], changed
    installs = [op for op in changed if "built once per fleet (already in the wheelhouse)" in op]
    assert installs and changed[installs[0]] == 1, changed
    assert probe(SERVE2) == ["2.13.0+cpu", "cpu", "11.0"]
    assert len(built_wheels(wheelhouse)) == 1
