"""The monitoring role: Prometheus (the distro's package) under armada's own unit, scraping every host of
the inventory, with armada's alert rules (roles/monitoring/config.py decides both, from the inventory).

Its web UI and API bind loopback by default (Prometheus 2.42 has no password of its own): reach it with
an SSH tunnel. The rule file and the configuration are checked with the host's own promtool before
Prometheus is restarted on them.
"""

import shlex
from io import StringIO

import yaml
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server
from pyinfra.operations.util import any_changed

from armada.hardening import unit_hardening
from armada.role import Fleet, Role, RoleRun
from armada.errors import DataError
from armada.role_support import (
    OPEN_OPT_OUT,
    endpoint,
    host_address,
    is_loopback,
    managed_service,
    mask_distro_unit,
    template_path,
)
from roles.monitoring import health
from roles.monitoring.config import PROMETHEUS_UNIT, alert_rules, gaps, prometheus_config
from roles.monitoring.defaults import KEYS

BINARY = "/usr/bin/prometheus"


def rules_path(data) -> str:
    return f"{data['armada_config_dir']}/prometheus/armada-alerts.yml"


def config_path(data) -> str:
    return f"{data['armada_config_dir']}/prometheus/prometheus.yml"


def prometheus_args(data) -> str:
    return shlex.join([f"--config.file={config_path(data)}", f"--storage.tsdb.path={data['monitoring_data_dir']}",
                       f"--storage.tsdb.retention.time={data['monitoring_retention']}",
                       f"--web.listen-address={endpoint(data['monitoring_listen'], data['monitoring_port'])}"])


def fleet_hosts(run: RoleRun) -> list[tuple[str, str, dict]]:
    """(name, address, complete data) of every inventory host, in the inventory's order."""
    return [(other.name, host_address(other), run.data_of(other)) for other in run.inventory]


def as_yaml(value: dict) -> str:
    return "# Managed by armada (monitoring role), from the inventory.\n" + yaml.safe_dump(value, sort_keys=False)


@deploy("armada monitoring")
def apply(run: RoleRun):
    data = run.data
    tpl = template_path(__file__)
    user = data["monitoring_service_user"]
    mask_distro_unit("prometheus.service")
    apt.packages(name="prometheus package", packages=["prometheus"], no_recommends=True,
                 _env={"DEBIAN_FRONTEND": "noninteractive"})
    files.directory(name="Prometheus store", path=data["monitoring_data_dir"], user=user, group=user, mode="750")
    files.directory(name="Prometheus config dir", path=f"{data['armada_config_dir']}/prometheus", mode="755")
    rules = files.put(name="alert rules", src=StringIO(as_yaml(alert_rules(data))), dest=rules_path(data), mode="644")
    config = files.put(name="Prometheus config (targets from the inventory)",
                       src=StringIO(as_yaml(prometheus_config(run.host.name, data, fleet_hosts(run), rules_path(data)))),
                       dest=config_path(data), mode="644")
    server.shell(name="promtool checks the config and the rules",
                 commands=[f"promtool check config {shlex.quote(config_path(data))}"],
                 _if=any_changed(rules, config))
    unit = files.template(
        name="Prometheus unit",
        src=tpl("armada-prometheus.service.j2"),
        dest=f"/etc/systemd/system/{PROMETHEUS_UNIT}.service",
        mode="644",
        service_user=user,
        binary=BINARY,
        args=prometheus_args(data),
        hardening=unit_hardening([data["monitoring_data_dir"]]),
    )
    managed_service(PROMETHEUS_UNIT, unit, [rules, config], watched=[rules_path(data), config_path(data)])


def checks(name: str, data):
    """Prometheus 2.42 has no password of its own: bound beyond loopback only on purpose."""
    address = data["monitoring_listen"]
    if "monitoring" in data["armada_roles"] and not is_loopback(address) and not data[OPEN_OPT_OUT]:
        yield DataError(name, "monitoring_listen", address, "Prometheus would listen beyond loopback, and it has no "
                        "password: anyone on the network could read every metric of the fleet. Bind 127.0.0.1 and "
                        f"reach it through an SSH tunnel, or (an isolated, trusted network only) {OPEN_OPT_OUT}: true")


def fleet_checks(fleet: Fleet):
    for name, data in fleet.hosts:
        if "monitoring" in data["armada_roles"]:
            yield from gaps(name, data, fleet.hosts)


ROLE = Role(
    name="monitoring",
    doc="Prometheus (the distro package) scraping every host of the inventory, with armada's alert rules",
    keys=KEYS,
    checks=checks,
    fleet_checks=fleet_checks,
    apply=apply,
    health=health.checks,
    by_default=False,
    binds=("monitoring_port",),
)
