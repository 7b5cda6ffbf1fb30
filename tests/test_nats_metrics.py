"""nats and JetStream as Prometheus samples (files/armada-nats-metrics.py, run by the node_exporter role's
timer): the pure exposition on nats-server 2.9.10's real answers, then the script against a real
nats-server (Debian's package; .ci/run installs it) with JetStream on, off and stopped, its file accepted
by promtool's own parser."""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import time

import pytest
from conftest import ROOT, fixture_text

from roles.node_exporter.health import nats_samples

spec = importlib.util.spec_from_file_location("armada_nats_metrics", os.path.join(ROOT, "files", "armada-nats-metrics.py"))
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)

NATS_SERVER = shutil.which("nats-server")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def samples(text: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_jetstream_enabled_gives_its_figures():
    jsz = json.loads(fixture_text("nats", "jsz-enabled-2.9.10.json"))
    found = samples(probe.exposition((200, {"status": "ok"}), (200, jsz), 1796680000.5))
    assert found["armada_nats_up"] == "1" and found["armada_nats_jetstream_enabled"] == "1"
    assert found["armada_nats_jetstream_streams"] == "1" and found["armada_nats_jetstream_messages"] == "3"
    assert found["armada_nats_jetstream_storage_bytes"] == "135"
    assert found["armada_nats_jetstream_max_storage_bytes"] == "63119563776"
    assert found["armada_nats_probe_timestamp_seconds"] == "1796680000.500"


def test_jetstream_disabled_is_zero_and_no_figures():
    jsz = json.loads(fixture_text("nats", "jsz-disabled-2.9.10.json"))  # "disabled": true, from a server without -js
    found = samples(probe.exposition((200, {"status": "ok"}), (200, jsz), 1.0))
    assert found["armada_nats_up"] == "1" and found["armada_nats_jetstream_enabled"] == "0"
    assert not any(name.startswith("armada_nats_jetstream_") and name != "armada_nats_jetstream_enabled"
                   for name in found)


@pytest.mark.parametrize("healthz, jsz", [
    ((None, None), (None, None)),  # nothing answers
    ((503, {"status": "unavailable", "error": "JetStream has not established contact with a meta leader"}),
     (200, {"config": {}})),
    ((200, {"status": "ok"}), (200, "not a document")),
])
def test_a_nats_that_does_not_answer_right_is_down_in_the_file(healthz, jsz):
    found = samples(probe.exposition(healthz, jsz, 1.0))
    assert found["armada_nats_up"] == ("1" if healthz[0] == 200 else "0")
    assert found["armada_nats_jetstream_enabled"] == ("1" if healthz[0] == 503 else "0")
    assert "armada_nats_probe_timestamp_seconds" in found  # the file is written all the same


def test_the_health_check_reads_the_probe_through_the_exporter():
    # the real answer of node exporter 1.5.0 whose textfile folder held the probe's file
    scraped = fixture_text("metrics", "node-exporter-1.5.0-nats-textfile.txt")
    assert nats_samples(scraped) == {"armada_nats_up": "1", "armada_nats_jetstream_enabled": "1"}
    assert nats_samples("node_load1 0.5\n") == {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_probe(monitor_port: int, out: str) -> dict[str, str]:
    result = subprocess.run(["python3", os.path.join(ROOT, "files", "armada-nats-metrics.py"),
                             "--monitor", f"http://127.0.0.1:{monitor_port}", "--out", out, "--timeout", "3"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    linted = subprocess.run([PROMTOOL, "check", "metrics"], input=open(out).read(), capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert not [name for name in os.listdir(os.path.dirname(out)) if name.endswith(".partial")]
    return samples(open(out).read())


@pytest.mark.skipif(NATS_SERVER is None, reason="nats-server is not installed (apt-get install nats-server; .ci/run does)")
@pytest.mark.parametrize("jetstream", [True, False])
def test_the_probe_against_a_real_nats_server(tmp_path, jetstream):
    port, monitor = free_port(), free_port()
    args = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor)]
    if jetstream:
        args += ["-js", "-sd", str(tmp_path / "store")]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = str(tmp_path / "armada_nats.prom")
    try:
        for _ in range(50):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", monitor)) == 0:
                    break
            time.sleep(0.1)
        before = time.time()
        found = run_probe(monitor, out)
        assert found["armada_nats_up"] == "1"
        assert found["armada_nats_jetstream_enabled"] == ("1" if jetstream else "0")
        assert ("armada_nats_jetstream_max_storage_bytes" in found) == jetstream
        assert float(found["armada_nats_probe_timestamp_seconds"]) >= before - 1
    finally:
        server.terminate()
        server.wait(timeout=10)
    # nats stopped: the next probe still writes its file, saying so
    found = run_probe(monitor, out)
    assert found["armada_nats_up"] == "0" and found["armada_nats_jetstream_enabled"] == "0"
