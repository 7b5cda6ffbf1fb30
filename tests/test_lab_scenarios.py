"""Role scenarios: one full `molecule test` (create -> converge -> idempotence
-> verify -> destroy of the base scenario, through armada/lab/scenarios.py)
proves the Molecule front end and the lifecycle it drives; the same lifecycle
through pytest for two more roles (one per lab arch) is opt-in
(ARMADA_LAB_SCENARIOS=1, about 100 s: those roles already converge, rerun and
are verified in the main deploy's tests). The whole-deploy lifecycle is
tests/test_lab_deploy.py (same deploy, same testinfra checks)."""

import os
import shutil
import subprocess
import sys

import pytest

from armada.lab import scenarios
from conftest import ROOT

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]


@pytest.mark.skipif(not os.environ.get("ARMADA_LAB_SCENARIOS"),
                    reason="opt-in (two fresh hosts, about 100 s): set ARMADA_LAB_SCENARIOS=1")
@pytest.mark.parametrize("name", ["tcmalloc", "etcd"])
def test_scenario_lifecycle(lab_hosts, name):
    scenarios.create(name)
    code, changed, output = scenarios.converge(name)
    assert code == 0, output[-6000:]
    assert changed, "a fresh host must change"
    code, changed, output = scenarios.converge(name)
    assert code == 0 and changed == {}, (changed, output[-3000:])  # idempotence
    assert scenarios.verify(name) == 0


def test_molecule_front_end(lab_hosts):
    molecule = shutil.which("molecule", path=os.path.dirname(sys.executable))
    assert molecule, "molecule is not installed (pip install -e '.[test]')"
    # molecule finds ansible-playbook/ansible-config beside itself
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], "NO_COLOR": "1",
           "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run([molecule, "test", "-s", "base"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    for action in ("create", "converge", "idempotence", "verify", "destroy"):
        assert f"base > {action}: Executed: Successful" in output, output[-4000:]
    scenarios.create("base")  # the lab back up for whatever follows
