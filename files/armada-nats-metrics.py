#!/usr/bin/env python3
"""nats and JetStream, as Prometheus samples for the node exporter's textfile collector.

nats-server's monitoring port speaks JSON (/healthz, /jsz), which Prometheus cannot
scrape. Shipped by armada's node_exporter role to hosts that run nats and run by a
systemd timer with the host's python3 (standard library only)::

    python3 armada-nats-metrics.py --monitor http://127.0.0.1:8222 \
        --out /var/lib/armada/node-exporter/armada_nats.prom

Each run asks /healthz and /jsz on nats' loopback monitoring port and replaces the
output file at once (written beside it, then renamed: the exporter never reads half a
file). A nats that does not answer still gets a file, saying so (``armada_nats_up 0``,
``armada_nats_jetstream_enabled 0``); the probe's time lets an alert tell a stopped
timer from a healthy nats.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

# (metric, help, the /jsz field it reads, its type)
JETSTREAM = (
    ("armada_nats_jetstream_storage_bytes", "Bytes JetStream holds on disk", ("storage",), "gauge"),
    ("armada_nats_jetstream_memory_bytes", "Bytes JetStream holds in memory", ("memory",), "gauge"),
    ("armada_nats_jetstream_max_storage_bytes", "JetStream's disk limit", ("config", "max_storage"), "gauge"),
    ("armada_nats_jetstream_streams", "JetStream streams", ("streams",), "gauge"),
    ("armada_nats_jetstream_consumers", "JetStream consumers", ("consumers",), "gauge"),
    ("armada_nats_jetstream_messages", "Messages in JetStream's streams", ("messages",), "gauge"),
    ("armada_nats_jetstream_api_requests_total", "JetStream API requests", ("api", "total"), "counter"),
    ("armada_nats_jetstream_api_errors_total", "JetStream API requests that failed", ("api", "errors"), "counter"),
)


def _get(url: str, timeout: float):
    """(HTTP status, parsed JSON) of ``url``; (None, None) when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:  # /healthz answers 503 with a JSON reason
        try:
            return error.code, json.loads(error.read())
        except ValueError:
            return error.code, None
    except (OSError, ValueError):
        return None, None


def _field(document, path):
    for name in path:
        if not isinstance(document, dict) or name not in document:
            return None
        document = document[name]
    return document if isinstance(document, (int, float)) and not isinstance(document, bool) else None


def exposition(healthz, jsz, now: float) -> str:
    """Prometheus' text format for one probe (pure): ``healthz`` and ``jsz`` are (status, JSON) pairs."""
    status, health = healthz
    up = status == 200 and isinstance(health, dict) and health.get("status") == "ok"
    jsz_status, js = jsz
    enabled = jsz_status == 200 and isinstance(js, dict) and not js.get("disabled") and isinstance(js.get("config"), dict)
    lines = [
        "# HELP armada_nats_up Whether nats' /healthz answered ok",
        "# TYPE armada_nats_up gauge",
        f"armada_nats_up {int(up)}",
        "# HELP armada_nats_jetstream_enabled Whether nats' /jsz answered with JetStream enabled",
        "# TYPE armada_nats_jetstream_enabled gauge",
        f"armada_nats_jetstream_enabled {int(enabled)}",
        "# HELP armada_nats_probe_timestamp_seconds When armada's probe last asked nats",
        "# TYPE armada_nats_probe_timestamp_seconds gauge",
        f"armada_nats_probe_timestamp_seconds {now:.3f}",
    ]
    if enabled:
        for metric, text, path, kind in JETSTREAM:
            value = _field(js, path)
            if value is not None:
                lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}", f"{metric} {value}"]
    return "\n".join(lines) + "\n"


def write_atomically(path: str, text: str) -> None:
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w") as handle:
        handle.write(text)
    os.chmod(partial, 0o644)
    os.replace(partial, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitor", required=True, help="nats' monitoring URL (loopback)")
    parser.add_argument("--out", required=True, help="the .prom file in the node exporter's textfile folder")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    monitor = args.monitor.rstrip("/")
    text = exposition(_get(f"{monitor}/healthz", args.timeout), _get(f"{monitor}/jsz", args.timeout), time.time())
    write_atomically(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
