"""Data keys of the monitoring role (Prometheus and armada's alert rules on the monitoring host)."""

import re

from armada.keys import SECRET, Key, absolute_path, at_least, fraction, host_address, identifier, port, secret_path


def duration(value: str) -> str | None:
    """A Prometheus duration armada writes into its rules: a number and one unit."""
    return None if re.fullmatch(r"[1-9][0-9]{0,4}(s|m|h)", value) else "must be like 30s, 5m or 1h"


KEYS = (
    Key("monitoring_listen", str, "127.0.0.1", "Address Prometheus' web UI and API bind: loopback (reach it with "
        "an SSH tunnel); Prometheus 2.42 has no password of its own", check=host_address),
    Key("monitoring_port", int, 9090, "Port of Prometheus", check=port),
    Key("monitoring_service_user", str, "armada-prometheus", "System user Prometheus runs as (its own: it alone "
        "owns the time series store)", check=identifier, user_of="monitoring"),
    Key("monitoring_scrape_password_file", str, None, "File ON THE HOST (the monitoring host) holding the password of the "
        "node exporters that ask for one (their metrics_password_file's value): Prometheus sends it as "
        "metrics_user; 0600, owned by monitoring_service_user (its own copy: the exporter on the same host reads "
        "another file); never in a config, a command line or a log", nullable=True, check=secret_path,
        holds=SECRET, reader="monitoring_service_user"),
    Key("monitoring_data_dir", str, "/var/lib/armada/prometheus", "Prometheus' time series store on persistent "
        "disk", check=absolute_path),
    Key("monitoring_retention", str, "15d", "How long Prometheus keeps samples (--storage.tsdb.retention.time)",
        check=lambda v: None if re.fullmatch(r"[1-9][0-9]{0,4}(h|d|w|y)", v) else "must be like 12h, 15d or 2w"),
    Key("monitoring_scrape_interval", str, "15s", "How often every target is scraped (and rules evaluated)",
        check=duration),
    Key("monitoring_alert_for", str, "5m", "How long a condition must hold before its alert fires (a down "
        "target, a growing queue, a full KV cache, a full disk); etcd without a leader fires after 1m or this, "
        "whichever is shorter", check=duration),
    Key("monitoring_kv_cache_alert", float, 0.9, "vLLM KV cache usage (0-1) above which its alert fires",
        check=fraction),
    Key("monitoring_disk_free_alert", float, 0.1, "Free share (0-1) of a filesystem below which its alert fires",
        check=fraction),
    Key("monitoring_targets_wait", int, 300, "Seconds the health check waits for every target up (a vLLM the "
        "same run restarted answers once its model is loaded)", check=at_least(0)),
    Key("monitoring_queue_alert", int, 1, "vLLM waiting requests at or above which, while the queue grows, its "
        "alert fires", check=at_least(1)),
)
