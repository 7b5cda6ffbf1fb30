"""The monitoring role's health checks: Prometheus' unit and readiness, armada's alert rules loaded, and
every target of the inventory scraped and up (named by job and host when not)."""

from __future__ import annotations

import json
import shlex
import time

from armada.health import Check, concurrently, http_json, unit_active
from armada.role_support import endpoint, local_address, run_quiet
from roles.monitoring.config import PROMETHEUS_UNIT, alert_rules


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun."""
    return prometheus_checks(run.host, run.data)


def api(data) -> str:
    return f"http://{endpoint(local_address(data['monitoring_listen']), data['monitoring_port'])}"


def targets_seen(answer) -> tuple[list[dict], list[dict]]:
    """(every active target, those not scraped yet) from /api/v1/targets."""
    active = answer.get("data", {}).get("activeTargets", []) if isinstance(answer, dict) else []
    return active, [t for t in active if t.get("health") == "unknown"]


def describe(target: dict) -> str:
    name = f"{target.get('labels', {}).get('job')}@{target.get('labels', {}).get('instance')}"
    return name if target.get("health") == "up" else f"{name} {target.get('health')}: {target.get('lastError', '')}"


def prometheus_checks(host, data: dict, wait_s: int | None = None) -> list[Check]:
    base = api(data)
    ready_wait = (f"for i in $(seq 120); do curl -sf --noproxy '*' {shlex.quote(base + '/-/ready')} >/dev/null "
                  "&& exit 0; sleep 1; done; exit 1")
    active, (ready, _) = concurrently(lambda: unit_active(host, PROMETHEUS_UNIT),
                                      lambda: run_quiet(host, f"bash -c {shlex.quote(ready_wait)}"))
    checks = [active, Check(host.name, "Prometheus ready", ready, "ready" if ready else "no /-/ready within 120 s")]

    def rules() -> Check:
        ok, answer = http_json(host, f"{base}/api/v1/rules")
        loaded = sorted(r.get("name") for g in (answer.get("data", {}).get("groups", []) if ok and isinstance(
            answer, dict) else []) for r in g.get("rules", []))
        wanted = sorted(r["alert"] for r in alert_rules(data)["groups"][0]["rules"])
        return Check(host.name, "armada's alert rules loaded", loaded == wanted, ", ".join(loaded) or str(answer)[:160])

    def targets() -> Check:
        # a target is 'unknown' until its first scrape, and a service the same run (re)started (vLLM loading
        # its model on a serving host) answers later: wait for every target up, at most wait_s
        deadline = time.monotonic() + (wait_s if wait_s is not None else data["monitoring_targets_wait"])
        while True:
            ok, answer = http_json(host, f"{base}/api/v1/targets?state=active")
            every, _ = targets_seen(answer)
            if ok and every and all(t.get("health") == "up" for t in every) or time.monotonic() > deadline:
                break
            time.sleep(2)
        down = [t for t in every if t.get("health") != "up"]
        seen = "; ".join(describe(t) for t in (down or every)) or json.dumps(answer)[:160]
        return Check(host.name, f"every target up ({len(every)})", ok and bool(every) and not down, seen)

    return checks + concurrently(rules, targets)
