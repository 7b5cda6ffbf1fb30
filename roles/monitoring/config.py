"""What the monitoring host's Prometheus scrapes and alerts on, from the inventory (pure).

Every host of the inventory is a target of each monitoring host: its node
exporter (hosts running node_exporter), NVIDIA's DCGM exporter (GPU hosts
running dcgm_exporter), vLLM's own /metrics (hosts serving
with vLLM; vLLM 0.32 serves /metrics outside its API key, so that key is not
handed to the monitoring host), Dynamo's frontend /metrics (hosts serving
through Dynamo), etcd's /metrics (hosts running etcd; etcd serves it to
anyone who reaches its client port, auth or not). nats has no Prometheus
endpoint (its monitoring port speaks JSON): on a host running nats and the
node exporter, armada's probe writes armada_nats_* samples that the node
job scrapes (roles/node_exporter).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from armada.errors import DataError
from armada.role_support import endpoint, is_loopback, local_address

PROMETHEUS_UNIT = "armada-prometheus"
PASSWORD_JOBS = {"node": "node_exporter", "dcgm": "dcgm_exporter"}  # exporters asking for metrics_password_file
NATS_STALE_SECONDS = 120  # the nats probe runs every 5-60 s (node_exporter_nats_interval): older means it stopped

Host = tuple[str, str, Mapping[str, Any]]  # (inventory name, the address other hosts reach it at, its data)


def target(listen: str, address: str, same_host: bool) -> str | None:
    """Where the monitoring host reaches a service bound to ``listen`` on a host reached at ``address``;
    None when it cannot (loopback on another host)."""
    if same_host:
        return local_address(listen)
    if listen in ("0.0.0.0", "::"):
        return address
    return None if is_loopback(listen) else listen


def _serving(data: Mapping[str, Any]) -> str | None:
    if "vllm_service" not in data["armada_roles"]:
        return None
    return data["armada_serving"]


# (job, the role or serving mode it follows, bind key, port key, metrics path)
SOURCES = (
    ("node", lambda d: "node_exporter" in d["armada_roles"], "node_exporter_listen", "node_exporter_port"),
    ("dcgm", lambda d: "dcgm_exporter" in d["armada_roles"], "dcgm_exporter_listen", "dcgm_exporter_port"),
    ("vllm", lambda d: _serving(d) == "vllm", "vllm_host", "vllm_port"),
    ("dynamo", lambda d: _serving(d) == "dynamo", "dynamo_frontend_host", "dynamo_frontend_port"),
    ("etcd", lambda d: "etcd" in d["armada_roles"], "etcd_listen", "etcd_client_port"),
)


def scrape_jobs(monitor: str, data: Mapping[str, Any], hosts: Sequence[Host]) -> list[dict]:
    """Prometheus' scrape_configs for the monitoring host ``monitor`` (``data``: its data) over ``hosts``.
    A target it cannot reach is left out here and refused by :func:`gaps` before any change."""
    jobs = [{"job_name": "prometheus", "static_configs": [
        {"targets": [endpoint("127.0.0.1", data["monitoring_port"])], "labels": {"instance": monitor}}]}]
    for job, runs, bind, port_key in SOURCES:
        found = []
        for name, address, other in hosts:
            if not runs(other):
                continue
            where = target(other[bind], address, name == monitor)
            if where is not None:
                found.append({"targets": [endpoint(where, other[port_key])], "labels": {"instance": name}})
        if not found:
            continue
        entry: dict[str, Any] = {"job_name": job, "static_configs": found}
        if job in PASSWORD_JOBS and data["monitoring_scrape_password_file"]:
            # Prometheus reads the file itself (its own, 0600): the password is never in this config
            entry["basic_auth"] = {"username": data["metrics_user"],
                                   "password_file": data["monitoring_scrape_password_file"]}
        if job == "etcd" and any(other["etcd_tls_cert_file"] for name, _, other in hosts if runs(other)):
            entry["scheme"] = "https"
            entry["tls_config"] = {"ca_file": data["etcd_tls_ca_file"]}
            if any(other["etcd_client_cert_auth"] for name, _, other in hosts if runs(other)):
                # that etcd asks every client for a certificate: Prometheus presents armada's (its key is
                # Prometheus' own on this host)
                entry["tls_config"].update(cert_file=data["etcd_tls_client_cert_file"],
                                           key_file=data["etcd_tls_client_key_file"])
        jobs.append(entry)
    return jobs


def gaps(monitor: str, data: Mapping[str, Any], hosts: Iterable[tuple[str, Mapping[str, Any]]]) -> Iterable[DataError]:
    """Targets the monitoring host could not scrape, named by host and key (pure)."""
    hosts = list(hosts)
    for job, runs, bind, _ in SOURCES:
        for name, other in hosts:
            if runs(other) and name != monitor and is_loopback(other[bind]):
                yield DataError(name, bind, other[bind], f"the monitoring host {monitor} scrapes this host's {job} "
                                "metrics, and it binds loopback only: bind the address the monitoring host reaches "
                                "(armada's guards for that address apply)")
    for name, other in hosts:
        exporters = [role for role in PASSWORD_JOBS.values() if role in other["armada_roles"]]
        if exporters and other["metrics_password_file"] and not data["monitoring_scrape_password_file"]:
            yield DataError(monitor, "monitoring_scrape_password_file", None, f"{name}'s {' and '.join(exporters)} "
                            "ask for a password (metrics_password_file): set this to a file holding it on this "
                            "monitoring host (Prometheus sends it)")
        elif exporters and other["metrics_user"] != data["metrics_user"]:
            yield DataError(name, "metrics_user", other["metrics_user"], f"the monitoring host {monitor} scrapes "
                            f"as {data['metrics_user']}: one Prometheus job scrapes every {exporters[0]}")
    tls = [name for name, other in hosts if "etcd" in other["armada_roles"] and other["etcd_tls_cert_file"]]
    plain = [name for name, other in hosts if "etcd" in other["armada_roles"] and not other["etcd_tls_cert_file"]]
    if tls and not data["etcd_tls_ca_file"]:
        yield DataError(monitor, "etcd_tls_ca_file", None, f"etcd on {', '.join(tls)} speaks TLS: set "
                        "etcd_tls_ca_file on this monitoring host to check its certificate")
    asking = [name for name, other in hosts if "etcd" in other["armada_roles"] and other["etcd_client_cert_auth"]]
    for key in ("etcd_tls_client_cert_file", "etcd_tls_client_key_file"):
        if asking and not data[key]:
            yield DataError(monitor, key, None, f"etcd on {', '.join(asking)} asks every client for a certificate "
                            f"(etcd_client_cert_auth): set {key} on this monitoring host (Prometheus presents it)")
    if tls and plain:
        yield DataError(monitor, "etcd_tls_cert_file", None, f"etcd speaks TLS on {', '.join(tls)} and plain http "
                        f"on {', '.join(plain)}: one Prometheus job scrapes them all, make them alike")


def alert_rules(data: Mapping[str, Any]) -> dict:
    """armada's alert rules (a Prometheus rule file), with the windows and thresholds of ``data``: what the
    health checks say, watched all day."""
    wait = data["monitoring_alert_for"]
    leader_wait = "1m" if _seconds(wait) > 60 else wait
    rules = [
        _alert("ArmadaTargetDown", "up == 0", wait, "critical",
               "{{ $labels.job }} on {{ $labels.instance }} does not answer",
               "Prometheus could not scrape {{ $labels.job }} on {{ $labels.instance }} for " + wait +
               " (a host down, its service stopped, or a network between them)"),
        _alert("ArmadaVllmQueueGrowing",
               f"vllm:num_requests_waiting >= {int(data['monitoring_queue_alert'])} "
               f"and deriv(vllm:num_requests_waiting[{wait}]) > 0", wait, "warning",
               "vLLM's waiting queue grows on {{ $labels.instance }}",
               "{{ $value }} requests wait and the queue has grown for " + wait + ": the host serves fewer requests "
               "than arrive"),
        _alert("ArmadaVllmKvCacheNearlyFull", f"vllm:kv_cache_usage_perc > {float(data['monitoring_kv_cache_alert'])}",
               wait, "warning", "vLLM's KV cache is nearly full on {{ $labels.instance }}",
               "KV cache usage {{ $value | humanizePercentage }} for " + wait + ": requests get preempted or wait"),
        _alert("ArmadaDynamoModelNotReady", "dynamo_frontend_model_ready == 0", wait, "critical",
               "Dynamo's frontend on {{ $labels.instance }} has {{ $labels.model }} not ready",
               "Dynamo's frontend has not had a ready worker for {{ $labels.model }} for " + wait +
               " (workers down, or not registered in etcd)"),
        _alert("ArmadaEtcdNoLeader", "etcd_server_has_leader == 0", leader_wait, "critical",
               "etcd on {{ $labels.instance }} has no leader",
               "etcd has had no leader for " + leader_wait + ": Dynamo's workers cannot register or renew leases"),
        _alert("ArmadaNatsJetStreamUnavailable",
               "armada_nats_up == 0 or armada_nats_jetstream_enabled == 0 or "
               f"(time() - armada_nats_probe_timestamp_seconds) > {NATS_STALE_SECONDS}", wait, "critical",
               "nats JetStream is unavailable on {{ $labels.instance }}",
               "nats' /healthz or /jsz has not answered ok with JetStream enabled for " + wait + " (or armada's "
               f"probe has written nothing for over {NATS_STALE_SECONDS} s): Dynamo's request and event planes "
               "stop"),
        _alert("ArmadaGpuMissing",
               "armada_gpus_expected > on(instance) (count by (instance) (count by (instance, UUID) "
               "(DCGM_FI_DEV_GPU_TEMP)) or on(instance) armada_gpus_expected * 0)", wait, "critical",
               "a GPU is missing on {{ $labels.instance }}",
               "armada found {{ $value }} GPU(s) on PCI at its last deploy and DCGM reports fewer for " + wait +
               " (a GPU off the bus, a driver that lost it, or the DCGM exporter down)"),
        _alert("ArmadaGpuThermalThrottling", "rate(DCGM_FI_DEV_THERMAL_VIOLATION[5m]) > 0", wait, "warning",
               "GPU {{ $labels.gpu }} on {{ $labels.instance }} is slowed down for heat",
               "GPU {{ $labels.gpu }} ({{ $labels.modelName }}) has spent time thermally throttled in every 5m "
               "window for " + wait + ": serving slows (cooling, airflow, a failing fan)"),
        _alert("ArmadaGpuRowRemapFailed", "DCGM_FI_DEV_ROW_REMAP_FAILURE > 0", "1m", "critical",
               "GPU {{ $labels.gpu }} on {{ $labels.instance }} failed to remap a memory row",
               "GPU {{ $labels.gpu }} ({{ $labels.modelName }}) could not remap a faulty memory row: NVIDIA's "
               "guidance is to drain the host and have the GPU checked"),
        _alert("ArmadaDiskNearlyFull",
               'node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|squashfs|nsfs|overlay"} / '
               f'node_filesystem_size_bytes{{fstype!~"tmpfs|ramfs|squashfs|nsfs|overlay"}} '
               f"< {float(data['monitoring_disk_free_alert'])}", wait, "warning",
               "{{ $labels.mountpoint }} on {{ $labels.instance }} is nearly full",
               "{{ $value | humanizePercentage }} free on {{ $labels.mountpoint }} (model caches and installs "
               "live on disk)"),
    ]
    return {"groups": [{"name": "armada", "rules": rules}]}


def _alert(name: str, expr: str, wait: str, severity: str, summary: str, description: str) -> dict:
    return {"alert": name, "expr": expr, "for": wait, "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description}}


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def prometheus_config(monitor: str, data: Mapping[str, Any], hosts: Sequence[Host], rules_file: str) -> dict:
    interval = data["monitoring_scrape_interval"]
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "external_labels": {"armada_monitor": monitor}},
        "rule_files": [rules_file],
        "scrape_configs": scrape_jobs(monitor, data, hosts),
    }
