"""Opt-in, slow: a real vLLM CPU build from source with the ``source``
strategy, on hosts YOU provide (this project's machine kind cannot: Debian
12's g++ 12.2 is below vLLM's 12.3 and crashed on its kernels, LAB.md).

    ARMADA_VLLM_BUILD_INVENTORY=inventories/my-graviton.py \\
        .venv/bin/pytest -q -s tests/test_vllm_source_build.py

The inventory's hosts run roles base and vllm with ``vllm_strategy:
source`` (a Debian 13 / Ubuntu 24.04 builder, FETCHCONTENT_SOURCE_DIR_ONEDNN
in ``vllm_build_env`` when GitHub is out of reach) and a folder
``vllm_wheelhouse``. The test runs deploys/llm.py, prints the build's wall
time (for the README) and checks that exactly one vLLM wheel per build key
was published and that a second run builds nothing.
"""

import os
import subprocess
import sys
import time

import pytest

from armada.inventory import host_data, load_inventory
from armada.schema import with_defaults
from conftest import ROOT
from test_lab_deploy import changed_operations

INVENTORY = os.environ.get("ARMADA_VLLM_BUILD_INVENTORY")
pytestmark = pytest.mark.skipif(not INVENTORY, reason="opt-in: set ARMADA_VLLM_BUILD_INVENTORY (see the docstring)")
PYINFRA = os.path.join(os.path.dirname(sys.executable), "pyinfra")


def run(report):
    started = time.monotonic()
    result = subprocess.run([PYINFRA, "-y", INVENTORY, "deploys/llm.py", "--data", f"armada_health_report={report}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=4 * 3600)
    return result, result.stdout + result.stderr, time.monotonic() - started


def test_real_vllm_source_build_once_per_fleet(tmp_path):
    data = with_defaults(host_data(next(iter(load_inventory(INVENTORY)))))
    assert data["vllm_strategy"] == "source", "the inventory must use vllm_strategy: source"
    builds = os.path.join(os.path.expanduser(data["vllm_wheelhouse"] or "~/.cache/armada/wheelhouse"), "builds")
    before = set(os.listdir(builds)) if os.path.isdir(builds) else set()
    result, output, took = run(tmp_path / "first.json")
    assert result.returncode == 0, output[-8000:]
    print(f"\nvLLM source build + fleet install: {took:.0f} s wall")
    new = set(os.listdir(builds)) - before
    for key in new:
        wheels = [w for w in os.listdir(os.path.join(builds, key)) if w.startswith("vllm-")]
        assert len(wheels) == 1, (key, wheels)
    result, output, _ = run(tmp_path / "second.json")
    assert result.returncode == 0, output[-8000:]
    assert not [op for op in changed_operations(output) if op.startswith("build the wheel")]
