"""Fleet monitoring on the lab, for real: Prometheus (Debian's 2.42) on armada-cp (aarch64 under qemu)
scrapes a node exporter on every lab host (each asking for the lab's scrape password), vLLM's /metrics
on both serving hosts and etcd's on armada-cp, with armada's alert rules (a window of 15 s here, from
data). Asked through Prometheus' HTTP API on armada-cp's loopback (where it binds), over SSH.

Runs on the session's deployed lab (ARMADA_LAB_MONITORING=1 adds the roles). When the module ends it stops
Prometheus and the node exporters (installed, disabled): the other modules' data does not name them, and
scraping every 5 s under qemu cost about 7% of the machine's two cores for the rest of the suite.
"""

import importlib.util
import json
import os
import time
import urllib.parse

import pytest
from conftest import ROOT, run_main_deploy

from armada.deploy import HEALTH_OP
from armada.lab import hosts as lab
from armada.lab.client import completion_tokens
from armada.lab.scenarios import changed_operations

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

CP = lab.HOSTS_BY_NAME["armada-cp"]
SERVE, SERVE2 = lab.HOSTS_BY_NAME["armada-serve"], lab.HOSTS_BY_NAME["armada-serve2"]
ENV = {**os.environ, "ARMADA_LAB_MONITORING": "1", "ARMADA_LAB_ALERT_FOR": "15s"}
EVERY_TARGET = {("prometheus", "armada-cp"), ("node", "armada-cp"), ("node", "armada-serve"),
                ("node", "armada-serve2"), ("vllm", "armada-serve"), ("vllm", "armada-serve2"), ("etcd", "armada-cp")}


def prometheus(path: str, **params) -> dict:
    """GET Prometheus' API on armada-cp's loopback (it binds nothing else)."""
    url = "http://127.0.0.1:9090" + path + ("?" + urllib.parse.urlencode(params) if params else "")
    code, out, err = lab.ssh_exec(CP, f"curl -sS --max-time 20 --noproxy '*' '{url}'", timeout=60)
    assert code == 0, err
    return json.loads(out)


def up_by_target() -> dict[tuple[str, str], str]:
    answer = prometheus("/api/v1/query", query="up")
    return {(r["metric"]["job"], r["metric"]["instance"]): r["value"][1] for r in answer["data"]["result"]}


def active_targets() -> dict[tuple[str, str], str]:
    """(job, instance) -> health of what Prometheus scrapes now (a removed target's last `up` sample stays
    queryable for 5 minutes after a restart; the targets API is the configuration's own view)."""
    answer = prometheus("/api/v1/targets", state="active")
    return {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in answer["data"]["activeTargets"]}


def wait_for(what, condition, timeout: float, every: float = 3):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


@pytest.fixture(scope="module")
def monitored(deployed_lab, tmp_path_factory):
    for host in (CP, SERVE, SERVE2):
        lab.refresh_lab_files(host)  # the scrape password, on a lab brought up before it existed
    report = tmp_path_factory.mktemp("monitoring") / "first.json"
    try:
        result, output = run_main_deploy(report, env=ENV)
        assert result.returncode == 0, output[-8000:]
        yield json.loads(report.read_text()), output
    finally:
        for host in (CP, SERVE, SERVE2):
            lab.ssh_exec(host, "systemctl disable --now armada-prometheus armada-node-exporter "
                         "armada-nats-metrics.timer 2>/dev/null; true", timeout=120)


def test_every_host_is_scraped_and_up(monitored):
    report, _ = monitored
    checks = {(host, c["check"]): c for host, entry in report.items() for c in entry["checks"]}
    assert checks[("armada-cp", "every target up (7)")]["ok"], checks[("armada-cp", "every target up (7)")]
    assert checks[("armada-cp", "armada's alert rules loaded")]["ok"]
    for host in ("armada-cp", "armada-serve", "armada-serve2"):
        assert checks[(host, "node exporter refuses a scrape without the password")]["ok"]
        assert checks[(host, "node exporter answers its metrics")]["ok"]
    assert checks[("armada-cp", "node exporter serves nats' JetStream probe")]["ok"]
    # Prometheus' own answer, not only armada's check of it
    assert up_by_target() == {target: "1" for target in EVERY_TARGET}
    # nats (JSON only) reaches Prometheus through the probe and armada-cp's node exporter
    def jetstream():
        answer = prometheus("/api/v1/query", query="armada_nats_jetstream_enabled")["data"]["result"]
        return [(r["metric"]["instance"], r["value"][1]) for r in answer]
    assert wait_for("nats probe", lambda: jetstream() == [("armada-cp", "1")], timeout=30), jetstream()


def test_prometheus_and_the_password_stay_closed(monitored, testinfra_host):
    cp = testinfra_host(CP)
    assert cp.socket("tcp://127.0.0.1:9090").is_listening and not cp.socket("tcp://0.0.0.0:9090").is_listening
    config = cp.file("/etc/armada/prometheus/prometheus.yml").content_string
    assert lab.lab_secret("metrics-password") not in config and "password_file: /etc/armada-secrets/" in config
    assert cp.file("/etc/armada-secrets/metrics-scrape-password").user == "armada-prometheus"
    assert cp.file("/etc/armada-secrets/metrics-password").user == "armada-node-exporter"
    assert cp.file("/etc/armada-secrets/metrics-password").mode == 0o600
    # the exporter holds a bcrypt hash in its runtime folder, never the password
    web = cp.run("cat /run/armada-node-exporter/web.yml").stdout
    assert "$2b$" in web and lab.lab_secret("metrics-password") not in web


def test_vllm_request_counter_moves_with_real_completions(monitored):
    def served() -> float:
        answer = prometheus("/api/v1/query", query='sum(vllm:request_success_total{instance="armada-serve"})')
        return float(answer["data"]["result"][0]["value"][1]) if answer["data"]["result"] else 0.0

    before = served()
    for _ in range(3):
        assert completion_tokens(SERVE.address, 8000) > 0
    after = wait_for("counter", lambda: served() >= before + 3 and served(), timeout=60)
    assert after >= before + 3, (before, after)


def test_a_second_run_changes_nothing(monitored, tmp_path):
    result, output = run_main_deploy(tmp_path / "again.json", env=ENV)
    assert result.returncode == 0, output[-6000:]
    # the health checks read (they run every time); nothing else may change
    assert set(changed_operations(output)) <= {HEALTH_OP}, changed_operations(output)


def test_a_host_removed_from_the_inventory_loses_its_targets(monitored, tmp_path):
    # the lab inventory less armada-serve2 (a module-level tuple per group, as pyinfra reads them)
    spec = importlib.util.spec_from_file_location("lab_inventory", os.path.join(ROOT, "inventories", "local.py"))
    inventory = tmp_path / "two_hosts.py"
    inventory.write_text(
        "import importlib.util, os\n"
        f"_spec = importlib.util.spec_from_file_location('lab_inventory', {spec.origin!r})\n"
        "_lab = importlib.util.module_from_spec(_spec)\n_spec.loader.exec_module(_lab)\n"
        "control_plane = _lab.control_plane\n"
        "serving = ([h for h in _lab.serving[0] if h[0] != 'armada-serve2'], _lab.serving[1])\n")
    pyinfra = os.path.join(ROOT, ".venv", "bin", "pyinfra")
    import subprocess

    def deploy(path):
        return subprocess.run([pyinfra, "-y", str(path), "deploys/llm.py", "--limit", CP.name, "--data",
                               f"armada_health_report={tmp_path}/r.json"], cwd=ROOT, env=ENV, capture_output=True,
                              text=True, timeout=1200)

    try:
        result = deploy(inventory)
        assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
        assert set(active_targets()) == EVERY_TARGET - {("node", "armada-serve2"), ("vllm", "armada-serve2")}
    finally:
        result = deploy(os.path.join("inventories", "local.py"))  # added back
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert wait_for("targets", lambda: active_targets() == {target: "up" for target in EVERY_TARGET}, timeout=60)


def test_a_stopped_vllm_fires_its_alert_within_the_window(monitored):
    def firing():
        alerts = prometheus("/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"].get("alertname") == "ArmadaTargetDown"
                and a["labels"].get("instance") == "armada-serve2" and a["state"] == "firing"]

    assert not firing()
    code, _, err = lab.ssh_exec(SERVE2, "systemctl stop armada-vllm", timeout=120)
    assert code == 0, err
    stopped = time.monotonic()
    try:
        # 15 s of window, a 5 s scrape and evaluation interval
        alerts = wait_for("alert", firing, timeout=90, every=1)
        took = time.monotonic() - stopped
        assert alerts and alerts[0]["labels"]["job"] == "vllm", prometheus("/api/v1/alerts")
        assert 15 <= took <= 60, took
        print(f"ArmadaTargetDown for vllm@armada-serve2 fired {took:.0f} s after the stop")
    finally:
        lab.ssh_exec(SERVE2, "systemctl start armada-vllm", timeout=120)
    # serving again (the modules after this one expect it)
    assert wait_for("vllm", lambda: up_by_target().get(("vllm", "armada-serve2")) == "1", timeout=600, every=5)
