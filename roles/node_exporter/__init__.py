"""The node_exporter role: Prometheus' node exporter (the distro's package) under armada's own unit.

Loopback by default. Bound to an address other hosts reach (the monitoring
host scrapes it), it asks for metrics_password_file's password, unless
data opts out on purpose (armada_insecure_open_endpoints).

Its textfile collector reads what armada's own probes write: on a host
running nats, a timer asks nats' loopback monitoring port (/healthz, /jsz,
JSON that Prometheus cannot scrape) and writes armada_nats_* samples
(files/armada-nats-metrics.py), which the JetStream alert watches.
"""

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from armada.hardening import unit_hardening
from armada.paths import shared
from armada.role import Role, RoleRun
from armada.role_support import endpoint, managed_service, mask_distro_unit, open_endpoint, template_path
from roles.node_exporter import health
from roles.node_exporter.defaults import KEYS

UNIT = "armada-node-exporter"
BINARY = "/usr/bin/prometheus-node-exporter"  # where Debian and Ubuntu ship it
NATS_PROBE = "armada-nats-metrics"
NATS_PROBE_FILE = "armada_nats.prom"
GPU_COUNT_FILE = "armada_gpus.prom"  # written by the dcgm_exporter role


def exporter_args(data) -> str:
    """The exporter's command line (no secret: the password reaches it as a hash in a file)."""
    return shlex.join([f"--web.listen-address={endpoint(data['node_exporter_listen'], data['node_exporter_port'])}",
                       f"--collector.textfile.directory={data['node_exporter_textfile_dir']}",
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
    python = password or "nats" in data["armada_roles"]  # the launcher's hash, the nats probe
    apt.packages(name="prometheus-node-exporter package",
                 packages=["prometheus-node-exporter", *(["python3"] if python else [])], no_recommends=True,
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
    files.directory(name="node exporter textfile folder", path=data["node_exporter_textfile_dir"],
                    user=data["node_exporter_service_user"], group=data["node_exporter_service_user"], mode="755")
    managed_service(UNIT, unit, written, watched=[launcher] if launcher else [])
    nats_probe(data, tpl)
    if "dcgm_exporter" not in data["armada_roles"]:
        # the GPU count the dcgm_exporter role writes: gone with that role, or ArmadaGpuMissing would fire for
        # a host whose DCGM exporter Prometheus no longer scrapes
        files.file(name="no GPU count without the DCGM exporter", path=f"{data['node_exporter_textfile_dir']}/"
                   f"{GPU_COUNT_FILE}", present=False)


def nats_probe(data, tpl) -> None:
    """On a host running nats: the probe, its oneshot unit and its timer; elsewhere none of them."""
    service, timer = f"/etc/systemd/system/{NATS_PROBE}.service", f"/etc/systemd/system/{NATS_PROBE}.timer"
    out = f"{data['node_exporter_textfile_dir']}/{NATS_PROBE_FILE}"
    if "nats" not in data["armada_roles"]:
        if host.get_fact(File, path=timer):  # nats left this host: so does its probe
            systemd.service(name="nats probe timer: stopped", service=f"{NATS_PROBE}.timer", running=False,
                            enabled=False)
            for path in (service, timer, out):
                files.file(name=f"nats probe: no {path}", path=path, present=False)
            systemd.daemon_reload(name="nats probe: daemon-reload")
        return
    script = f"{data['armada_root']}/bin/{NATS_PROBE}.py"
    files.directory(name="nats probe dir", path=f"{data['armada_root']}/bin", mode="755")
    put = files.put(name="nats probe", src=shared(f"files/{NATS_PROBE}.py"), dest=script, mode="755")
    units = [
        files.template(name="nats probe unit", src=tpl(f"{NATS_PROBE}.service.j2"), dest=service, mode="644",
                       service_user=data["node_exporter_service_user"], script=script, out=out,
                       monitor=f"http://127.0.0.1:{data['nats_monitor_port']}",
                       hardening=unit_hardening(writable=[data["node_exporter_textfile_dir"]])),
        files.template(name="nats probe timer", src=tpl(f"{NATS_PROBE}.timer.j2"), dest=timer, mode="644",
                       interval=data["node_exporter_nats_interval"]),
    ]
    systemd.daemon_reload(name="nats probe: daemon-reload", _if=any_changed(*units))
    systemd.service(name="nats probe timer: running and enabled", service=f"{NATS_PROBE}.timer", running=True,
                    enabled=True)
    # a changed timer or probe takes effect now, not at the timer's next start
    systemd.service(name="nats probe timer: restart on change", service=f"{NATS_PROBE}.timer", restarted=True,
                    _if=any_changed(put, *units))


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
