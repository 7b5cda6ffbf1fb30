"""A hub model on a fresh host, for real: armada-cp (aarch64, no vLLM install,
no ``current``) pulls a gated model by ``model_id`` from a hub mirror on the lab
bridge (armada.lab.hub, LAB ONLY: the lab's tiny model served the way
huggingface_hub expects), through the lab's egress proxy, with its token from a
file. The pull is killed midway on the host once; the next run resumes it with a
Range request, checks every file against the hub's hashes and marks it
complete; a third run pulls nothing.

Runs on the session's deployed lab; leaves a model folder on armada-cp.
"""

import hashlib
import json
import os
import secrets
import time

import pytest
from conftest import run_main_deploy

from armada.lab import hosts as lab
from armada.lab.assets import model_path
from armada.lab.hub import LabHub
from armada.lab.scenarios import changed_operations

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

CP = lab.HOSTS_BY_NAME["armada-cp"]
REPO = "armada-lab/tiny-llama"
TOKEN_FILE = "/etc/armada/hub-token"
TARGET = "/var/lib/armada/models/hub-tiny"


def deploy_args(hub):
    return ["--limit", CP.name, "--data", 'armada_roles=["base","model"]', "--data", "model_path=null",
            "--data", f"model_id={REPO}", "--data", "model_name=hub-tiny", "--data", f"model_hub_endpoint={hub.url}",
            "--data", f"model_hub_token_file={TOKEN_FILE}"]


def test_fresh_host_pulls_a_gated_model_from_a_mirror_and_resumes_a_killed_pull(deployed_lab, testinfra_host,
                                                                                  tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    cp = testinfra_host(CP)
    assert not cp.file("/opt/armada/vllm/current").exists  # a host with no vLLM install: nothing to borrow
    token = "hf_" + secrets.token_hex(16)
    cp.run(f"umask 077 && printf %s {token} > {TOKEN_FILE}")
    cp.run(f"rm -rf {TARGET}")  # a fresh start, also when a developer reruns this module on a kept lab
    weights = os.path.join(model_path(), "model.safetensors")
    size = os.path.getsize(weights)
    hub = LabHub(model_path(), REPO, address=lab.GATEWAY, token=token, rate=size // 8).start()
    try:
        # 1. the pull, killed on the host once a third of the weights has arrived
        pyinfra = os.path.join(os.path.dirname(sys.executable), "pyinfra")
        first = subprocess.Popen([pyinfra, "-y", "inventories/local.py", "deploys/llm.py", "--data",
                                  f"armada_health_report={tmp_path}/1.json", *deploy_args(hub)], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 900
        while hub.bytes_sent.get("model.safetensors", 0) < size // 3 and time.time() < deadline \
                and first.poll() is None:
            time.sleep(0.2)
        assert hub.bytes_sent.get("model.safetensors", 0) >= size // 3, first.communicate()[0][-4000:]
        cp.run("pkill -KILL -f armada-hub-pull.py")
        output = first.communicate(timeout=600)[0]
        assert first.returncode != 0, output[-4000:]
        partial = cp.file(f"{TARGET}/model.safetensors.armada-partial")
        assert partial.exists and 0 < partial.size < size
        assert not cp.run(f"ls {TARGET}/.armada-pulled-*").stdout.strip()  # not complete: not marked
        kept = partial.size

        # 2. the next run resumes it, checks every file, marks it complete
        hub.rate = None
        before = len(hub.requests)
        result, output = run_main_deploy(tmp_path / "2.json", *deploy_args(hub))
        assert result.returncode == 0, output[-6000:]
        assert f"bytes={kept}-" in [r["range"] for r in hub.requests[before:]]
        for name in os.listdir(model_path()):
            with open(os.path.join(model_path(), name), "rb") as handle:
                wanted = hashlib.sha256(handle.read()).hexdigest()
            assert cp.check_output(f"sha256sum {TARGET}/{name}").split()[0] == wanted, name
        record = json.loads(cp.check_output(f"cat {TARGET}/.armada-pulled-*"))
        assert record["commit"] == hub.commit and record["files"] == len(os.listdir(model_path()))
        assert cp.file(f"{TARGET}/model.safetensors").user == "armada"
        # the token: sent with every call of the pull, never printed (armada's reachability probe
        # before any change is an anonymous HEAD: a gated model answers it 401, which is reachable)
        pulls = [r for r in hub.requests if r["method"] == "GET" and not r["path"].startswith("/lfs/")]
        assert pulls and all(r["token"] for r in pulls)
        assert {r["method"] for r in hub.requests if not r["token"] and not r["path"].startswith("/lfs/")} == {"HEAD"}
        assert token not in output

        # 3. complete: nothing pulled again
        before = len(hub.requests)
        result, output = run_main_deploy(tmp_path / "3.json", *deploy_args(hub))
        assert result.returncode == 0, output[-6000:]
        assert not [name for name in changed_operations(output) if name.startswith("pull ")], output[-3000:]
        assert not [r for r in hub.requests[before:] if "/resolve/" in r["path"] or r["path"].startswith("/lfs/")]
    finally:
        hub.stop()
        cp.run(f"rm -f {TOKEN_FILE}")
