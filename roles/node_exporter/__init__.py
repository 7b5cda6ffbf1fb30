"""The node_exporter role: Prometheus' node exporter (the distro's package) under armada's own unit.

Loopback by default. Bound to an address other hosts reach (the monitoring
host scrapes it), it asks for metrics_password_file's password, unless
data opts out on purpose (armada_insecure_open_endpoints).
"""

import shlex

from pyinfra.api import deploy
from pyinfra.operations import apt, files

from armada.hardening import unit_hardening
from armada.role import Role, RoleRun
from armada.role_support import endpoint, managed_service, mask_distro_unit, open_endpoint, template_path
from roles.node_exporter import health
from roles.node_exporter.defaults import KEYS

UNIT = "armada-node-exporter"
BINARY = "/usr/bin/prometheus-node-exporter"  # where Debian and Ubuntu ship it


def exporter_args(data) -> str:
    """The exporter's command line (no secret: the password reaches it as a hash in a file)."""
    return shlex.join([f"--web.listen-address={endpoint(data['node_exporter_listen'], data['node_exporter_port'])}",
                       # the host's own mounts; the lab's and containers' pseudo filesystems left out
                       "--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|"
                       "devpts|devtmpfs|fusectl|hugetlbfs|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|"
                       "securityfs|selinuxfs|squashfs|sysfs|tracefs|tmpfs|ramfs)$"])


@deploy("armada node exporter")
def apply(run: RoleRun):
    data = run.data
    tpl = template_path(__file__)
    password = data["metrics_password_file"]
    mask_distro_unit("prometheus-node-exporter.service")
    apt.packages(name="prometheus-node-exporter package",
                 packages=["prometheus-node-exporter", *(["python3"] if password else [])], no_recommends=True,
                 _env={"DEBIAN_FRONTEND": "noninteractive"})
    written, launcher = [], None
    if password:
        launcher = f"{data['armada_root']}/bin/armada-node-exporter-start"
        written.append(files.template(name="node exporter launcher (hashes the scrape password)",
                                      src=tpl("armada-node-exporter-start.j2"), dest=launcher, mode="755",
                                      binary=BINARY, args=exporter_args(data), user_arg=shlex.quote(data["metrics_user"]),
                                      password_arg=shlex.quote(password)))
    unit = files.template(
        name="node exporter unit",
        src=tpl("armada-node-exporter.service.j2"),
        dest=f"/etc/systemd/system/{UNIT}.service",
        mode="644",
        unit=UNIT,
        service_user=data["node_exporter_service_user"],
        launcher=launcher,
        binary=BINARY,
        args=exporter_args(data),
        hardening=unit_hardening(full_proc=True, host_view=True),
    )
    managed_service(UNIT, unit, written, watched=[launcher] if launcher else [])


def checks(name: str, data):
    if "node_exporter" in data["armada_roles"]:
        yield from open_endpoint(name, data, "node_exporter_listen", ("metrics_password_file",), "the node exporter",
                                 "any host on the network could read this host's processes, mounts and load")


ROLE = Role(
    name="node_exporter",
    doc="Prometheus' node exporter (the distro package) under armada's own unit, loopback or password-guarded",
    keys=KEYS,
    checks=checks,
    apply=apply,
    health=health.checks,
    by_default=False,
    binds=("node_exporter_port",),
)
