"""The dcgm_exporter role's health checks: its unit, every GPU armada found on PCI in its metrics (with the
scrape password when it asks for one), and a client without it refused."""

from __future__ import annotations

from armada.health import Check, concurrently, unit_active
from armada.role_support import endpoint, local_address
from roles.node_exporter.health import refuses_without_password, scrape


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun."""
    return exporter_checks(run.host, run.data, run.profile.gpu_count)


def gpus_reported(metrics: str) -> set[str]:
    """The GPUs (by UUID) whose temperature DCGM reports in an exporter's answer (pure; a MIG GPU's
    instances share their GPU's UUID)."""
    found = set()
    for line in metrics.splitlines():
        if line.startswith("DCGM_FI_DEV_GPU_TEMP{"):
            labels = line[line.index("{") + 1:line.rindex("}")]
            for pair in labels.split('",'):
                key, _, value = pair.partition('="')
                if key.strip() == "UUID":
                    found.add(value.rstrip('"'))
    return found


def exporter_checks(host, data: dict, gpus: int) -> list[Check]:
    url = f"http://{endpoint(local_address(data['dcgm_exporter_listen']), data['dcgm_exporter_port'])}/metrics"
    password = data["metrics_password_file"]

    def answers() -> Check:
        status, seen = scrape(host, url, data)
        reported = gpus_reported(seen)
        return Check(host.name, f"DCGM exporter reports every GPU ({gpus})", status == "200" and len(reported) == gpus,
                     f"{len(reported)} GPU(s): {', '.join(sorted(reported))}" if status == "200"
                     else f"HTTP {status}: {seen[-120:]}")

    refuses = [lambda: refuses_without_password(host, url, data, "DCGM exporter")] if password else []
    return concurrently(lambda: unit_active(host, "armada-dcgm-exporter"), answers, *refuses)
