"""The node_exporter role's health checks: its unit, its metrics answered (with the scrape password when
it asks for one: sent from the file through curl's stdin), and a client without it refused."""

from __future__ import annotations

import shlex
import time

from armada.health import Check, concurrently, unit_active
from armada.role_support import endpoint, local_address, run_quiet


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun."""
    return exporter_checks(run.host, run.data)


def metrics_curl(url: str, user: str | None = None, password_file: str | None = None) -> str:
    """curl printing the HTTP status, then the body; with ``user``, the password goes through a curl config
    on stdin (printf is a shell builtin: in no process's argv)."""
    curl = f"curl -sS --max-time 20 --retry 15 --retry-connrefused --retry-delay 1 --noproxy '*' -w '\\n%{{http_code}}' {shlex.quote(url)}"
    if user:
        config = f'printf \'user = "%s:%s"\\n\' {shlex.quote(user)} "$(cat {shlex.quote(password_file)})"'
        curl = f"{config} | {curl} -K -"
    return f"bash -c {shlex.quote(curl)}"


def scrape(host, url: str, data, with_password: bool = True) -> tuple[str, str]:
    """(HTTP status, curl's whole output) of an exporter's /metrics on ``host``: as metrics_user with the host's
    scrape password when it asks for one (metrics_password_file) and ``with_password``; else without."""
    password = data["metrics_password_file"] if with_password else None
    _, seen = run_quiet(host, metrics_curl(url, data["metrics_user"] if password else None, password),
                        with_stderr=False)
    return seen.rsplit("\n", 1)[-1], seen


def refuses_without_password(host, url: str, data, what: str) -> Check:
    """An exporter asking for the scrape password answers 401 to a scrape without it."""
    status, _ = scrape(host, url, data, with_password=False)
    return Check(host.name, f"{what} refuses a scrape without the password", status == "401", f"HTTP {status}")


def exporter_checks(host, data: dict) -> list[Check]:
    url = f"http://{endpoint(local_address(data['node_exporter_listen']), data['node_exporter_port'])}/metrics"
    password = data["metrics_password_file"]

    def answers() -> Check:
        status, seen = scrape(host, url, data)
        samples = [line for line in seen.splitlines() if line.startswith("node_load1 ")]
        return Check(host.name, "node exporter answers its metrics", status == "200" and bool(samples),
                     samples[0] if samples else f"HTTP {status}: {seen[-120:]}")

    def nats_probe() -> Check:
        # the probe's timer writes its first file a second after it starts: wait for a sample
        seen, deadline = "", time.monotonic() + data["node_exporter_nats_interval"] + 15
        while True:
            seen = nats_samples(scrape(host, url, data)[1])
            if seen.get("armada_nats_jetstream_enabled") == "1" or time.monotonic() > deadline:
                break
            time.sleep(2)
        return Check(host.name, "node exporter serves nats' JetStream probe",
                     seen.get("armada_nats_jetstream_enabled") == "1", " ".join(f"{k}={v}" for k, v in seen.items())
                     or "no armada_nats_* sample")

    calls = [lambda: unit_active(host, "armada-node-exporter"), answers] \
        + ([lambda: refuses_without_password(host, url, data, "node exporter")] if password else []) \
        + ([nats_probe] if "nats" in data["armada_roles"] else [])
    return concurrently(*calls)


def nats_samples(metrics: str) -> dict[str, str]:
    """The nats probe's up and JetStream samples in an exporter's answer (pure)."""
    found = {}
    for line in metrics.splitlines():
        name, _, value = line.partition(" ")
        if name in ("armada_nats_up", "armada_nats_jetstream_enabled"):
            found[name] = value.strip()
    return found
