"""files/armada-hub-pull.py against a real HTTP hub mirror (armada.lab.hub, on
loopback): a complete pull checked file by file, a rerun that fetches nothing, a
gated model with and without its token, the token kept from another host, a
partial file resumed with a Range request, a corrupt one fetched again, and a
pull killed midway (SIGKILL) that the next one resumes."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from armada.lab.hub import LabHub
from armada.lab.model import make_tiny_llama

SCRIPT = os.path.join(ROOT, "files", "armada-hub-pull.py")
REPO = "armada-lab/tiny-llama"
MARKER = ".armada-pulled-test"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_llama(str(tmp_path_factory.mktemp("model") / "tiny"))


@pytest.fixture
def hub(model):
    hubs = []

    def start(**options):
        server = LabHub(model, REPO, **options).start()
        hubs.append(server)
        return server
    yield start
    for server in hubs:
        server.stop()


def command(hub, dest, *extra):
    return [sys.executable, SCRIPT, "--endpoint", hub.url, "--repo", REPO, "--dest", str(dest), "--marker", MARKER,
            *extra]


def pull(hub, dest, *extra):
    env = {**os.environ, "PYTHONPATH": ROOT, "NO_PROXY": "*"}
    return subprocess.run(command(hub, dest, *extra), capture_output=True, text=True, timeout=120, env=env)


def same_files(model, dest):
    for name in os.listdir(model):
        with open(os.path.join(model, name), "rb") as a, open(os.path.join(dest, name), "rb") as b:
            assert hashlib.sha256(a.read()).digest() == hashlib.sha256(b.read()).digest(), name


def test_a_complete_pull_then_a_rerun_that_fetches_nothing(hub, model, tmp_path):
    server = hub()
    result = pull(server, tmp_path)
    assert result.returncode == 0, result.stderr
    same_files(model, tmp_path)
    record = json.load(open(tmp_path / MARKER))
    assert record["commit"] == server.commit and record["files"] == len(os.listdir(model))
    assert record["bytes"] == sum(os.path.getsize(os.path.join(model, n)) for n in os.listdir(model))
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".armada-partial")]
    # the safetensors went through the "CDN" redirect, as on the real hub
    assert any(r["path"].startswith("/lfs/") for r in server.requests)
    before = len(server.requests)
    again = pull(server, tmp_path)
    assert again.returncode == 0 and "fetching" not in again.stdout
    assert [r["path"] for r in server.requests[before:]] == [f"/api/models/{REPO}/revision/main"]


def test_a_gated_model_needs_its_token_and_the_token_stays_on_the_hub(hub, tmp_path):
    server = hub(token="hf_lab_token")
    refused = pull(server, tmp_path / "a")
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr and "model_hub_token_file" in refused.stderr
    token_file = tmp_path / "token"
    token_file.write_text("hf_lab_token\n")
    host, port = server.server.server_address[:2]
    server.cdn = f"http://localhost:{port}"  # the redirect names another host
    result = pull(server, tmp_path / "b", "--token-file", str(token_file))
    assert result.returncode == 0, result.stderr
    assert "hf_lab_token" not in result.stdout + result.stderr
    cdn = [r for r in server.requests if r["path"].startswith("/lfs/")]
    hub_calls = [r for r in server.requests if not r["path"].startswith("/lfs/") and r is not server.requests[0]]
    assert cdn and not any(r["token"] for r in cdn)  # no token to another host
    assert hub_calls and all(r["token"] for r in hub_calls)


def test_a_partial_file_is_resumed_and_a_corrupt_one_fetched_again(hub, model, tmp_path):
    server = hub()
    weights = open(os.path.join(model, "model.safetensors"), "rb").read()
    (tmp_path / "model.safetensors.armada-partial").write_bytes(weights[:700_000])
    result = pull(server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "model.safetensors: resuming at byte 700000" in result.stdout
    assert {"bytes=700000-"} == {r["range"] for r in server.requests if r["range"]}
    same_files(model, tmp_path)
    # a partial file that is not a prefix of the real one: its sha256 differs, fetched again
    os.remove(tmp_path / MARKER)
    os.remove(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors.armada-partial").write_bytes(b"\0" * 1000)
    result = pull(server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sha256 differs from the hub's; downloading it again" in result.stdout
    same_files(model, tmp_path)


def test_a_pull_killed_midway_resumes_where_it_stopped(hub, model, tmp_path):
    size = os.path.getsize(os.path.join(model, "model.safetensors"))
    server = hub(rate=size // 4)  # about 4 s for the weights
    env = {**os.environ, "PYTHONPATH": ROOT, "NO_PROXY": "*"}
    process = subprocess.Popen(command(server, tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while server.bytes_sent.get("model.safetensors", 0) < size // 3 and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = tmp_path / "model.safetensors.armada-partial"
    kept = partial.stat().st_size
    assert 0 < kept < size and not (tmp_path / MARKER).exists()
    server.rate = None
    result = pull(server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"resuming at byte {kept}" in result.stdout
    same_files(model, tmp_path)


def test_excluded_files_are_not_fetched_and_a_missing_model_is_named(hub, tmp_path):
    server = hub()
    result = pull(server, tmp_path, "--exclude", "tokenizer*")
    assert result.returncode == 0 and not (tmp_path / "tokenizer.json").exists()
    assert (tmp_path / "config.json").exists()
    missing = subprocess.run([sys.executable, SCRIPT, "--endpoint", server.url, "--repo", "org/none", "--dest",
                              str(tmp_path / "n"), "--marker", MARKER], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": ROOT, "NO_PROXY": "*"})
    assert missing.returncode == 1 and "HTTP 404: no such model" in missing.stderr
