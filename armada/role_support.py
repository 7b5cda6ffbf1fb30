"""Small helpers roles share: templates, quiet reads, managed units, where
a control plane is reached. Below every role; imports none."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from gevent.lock import BoundedSemaphore
from pyinfra import host as current_host
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from armada.commands.etcd import TlsFiles
from armada.errors import DataError
from armada.keys import systemd_env_value
from armada.facts.services import ChangedSinceStart


def template_path(role_file: str) -> Callable[[str], str]:
    """``tpl = template_path(__file__)``; ``tpl("unit.j2")`` -> the role's templates/unit.j2."""
    folder = os.path.join(os.path.dirname(os.path.abspath(role_file)), "templates")
    return lambda name: os.path.join(folder, name)


def env_file_values(env: Mapping[str, str]) -> dict[str, str]:
    """An env file's values as its lines hold them (systemd's quoting; never a line break)."""
    return {name: systemd_env_value(value) for name, value in env.items()}


def proxy_for(url: str, data: Mapping[str, Any]) -> str | None:
    """The proxy a host reaches ``url`` through (its armada_proxy, unless armada_no_proxy names the URL's host)."""
    bypass = {name.strip() for name in data["armada_no_proxy"].split(",") if name.strip()}
    return None if urlparse(url).hostname in bypass else data["armada_proxy"]


# sshd lets one connection carry at most MaxSessions (10 by default) sessions at once, and refuses the
# next ("error: no more sessions"; seen on the lab when a host's health checks ran at once): the checks
# of one host run at most this many commands at a time over its connection
MAX_SESSIONS_PER_HOST = 6
_sessions: dict[str, BoundedSemaphore] = {}


def run_quiet(host, command: str, with_stderr: bool = True) -> tuple[bool, str]:
    """Run a read-only command on the host now (not as an operation), printing
    nothing; ``(exit status ok, its output)`` with stderr interleaved unless
    ``with_stderr`` is False. Commands run at once (armada.health.concurrently)
    share the host's connection, MAX_SESSIONS_PER_HOST at a time."""
    gate = _sessions.setdefault(host.name, BoundedSemaphore(MAX_SESSIONS_PER_HOST))
    with gate:
        ok, output = host.run_shell_command(command=command, print_output=False, print_input=False)
    lines = output.combined_lines if with_stderr else output.stdout_lines
    return ok, "\n".join(line.line if hasattr(line, "line") else str(line) for line in lines).strip()


def managed_service(unit_name: str, unit_op, config_ops, watched: tuple[str, ...] | list[str] = ()) -> None:
    """Keep a systemd unit running and enabled; restart it only when its unit
    file or a config it reads changed, and only if it was already running
    (a unit started by this run already reads the new files).

    ``unit_op`` and ``config_ops`` are the results of the operations that
    wrote them (pyinfra's change detection, evaluated at run time).
    ``watched`` are the paths of those configs: a run killed after writing
    them but before the restart leaves them newer than the running service,
    and the next run restarts it (and reloads systemd when its unit file
    changed) although nothing changes any more.
    """
    service = f"{unit_name}.service"
    was_running = current_host.get_fact(SystemdStatus, services=[service]).get(service, False)
    pending = current_host.get_fact(ChangedSinceStart, service=service,
                            paths=[f"/etc/systemd/system/{service}", *watched]) if was_running else []
    systemd.daemon_reload(name=f"{unit_name}: daemon-reload", **({} if pending else {"_if": any_changed(unit_op)}))
    systemd.service(name=f"{unit_name}: running and enabled", service=service, running=True, enabled=True)
    if was_running:
        systemd.service(
            name=f"{unit_name}: restart on change",
            service=service,
            restarted=True,
            **({} if pending else {"_if": any_changed(unit_op, *config_ops)}),
        )


def mask_distro_unit(unit: str):
    """Keep a package's own unit from starting (armada runs its own unit instead)."""
    return files.link(name=f"mask the distro's {unit}", path=f"/etc/systemd/system/{unit}", target="/dev/null")


def host_address(inventory_host) -> str:
    """The address other hosts reach an inventory host at."""
    return inventory_host.data.get("ssh_hostname") or inventory_host.name


def control_plane_host(host, data: Mapping[str, Any], inventory):
    """The inventory host whose nats and etcd ``host`` (with ``data``) uses (itself by default)."""
    name = data["armada_control_plane"]
    return inventory.get_host(name) if name else host


def nats_url(control_plane, data: Mapping[str, Any]) -> str:
    """Where clients on other hosts reach ``control_plane``'s nats (``data``: its data): tls:// when it speaks TLS."""
    scheme = "tls" if data["nats_tls_cert_file"] else "nats"
    return f"{scheme}://{client_address(data['nats_listen'], control_plane)}:{data['nats_port']}"


def etcd_url(control_plane, data: Mapping[str, Any]) -> str:
    """Where clients on other hosts reach ``control_plane``'s etcd (``data``: its data): https when it speaks TLS."""
    scheme = "https" if data["etcd_tls_cert_file"] else "http"
    return f"{scheme}://{client_address(data['etcd_listen'], control_plane)}:{data['etcd_client_port']}"


def etcd_endpoints(control_plane, cp_data: Mapping[str, Any], members: Iterable[tuple[Any, Mapping[str, Any]]] = ()) -> str:
    """ETCD_ENDPOINTS for a host using ``control_plane``'s etcd: that etcd first, then every other member of
    its cluster (``members``: (inventory host, its data) of etcd_cluster_group), so a client keeps working
    while one member is down (Dynamo's runtime splits the value on commas and fails over between them)."""
    urls = [etcd_url(control_plane, cp_data)] + [etcd_url(host, data) for host, data in members]
    return ",".join(dict.fromkeys(urls))


def etcd_members(run) -> list[tuple[Any, Mapping[str, Any]]]:
    """(host, data) of every member of the etcd cluster ``run``'s control plane belongs to; none when its
    etcd stands alone (``run``: an armada.role.RoleRun)."""
    group = run.cp_data["etcd_cluster_group"]
    if not group or run.data_of is None:
        return []
    return [(member, run.data_of(member)) for member in run.inventory.get_group(group)]


def local_etcd(data: dict) -> tuple[str, TlsFiles | None]:
    """This host's own etcd as the host itself reaches it: the loopback URL
    (https when it serves TLS) and how curl speaks TLS to it (None over plain http)."""
    url = f"{'https' if data['etcd_tls_cert_file'] else 'http'}://127.0.0.1:{data['etcd_client_port']}"
    return url, etcd_tls(data, url)


def etcd_tls(data: dict, url: str) -> TlsFiles | None:
    """How curl on a host with ``data`` speaks to the etcd at ``url``: its CA file and, when the host has
    one, armada's client certificate (etcd_tls_client_cert_file: what an etcd with etcd_client_cert_auth
    asks for); None over plain http."""
    if not url.startswith("https:"):
        return None
    return TlsFiles(data["etcd_tls_ca_file"], data["etcd_tls_client_cert_file"], data["etcd_tls_client_key_file"])


def client_address(listen: str, inventory_host) -> str:
    """Where clients on other hosts connect to a service bound to ``listen``."""
    if listen in ("0.0.0.0", "::"):
        return host_address(inventory_host)
    return listen


def local_address(listen: str) -> str:
    """Where a host reaches its own service bound to ``listen``: over loopback for a wildcard, else that
    address (an IPv6 loopback included)."""
    return "127.0.0.1" if listen in ("0.0.0.0", "::") else listen


def endpoint(address: str, port: int) -> str:
    """``address:port``, an IPv6 address in brackets."""
    try:
        return f"[{address}]:{port}" if ipaddress.ip_address(address).version == 6 else f"{address}:{port}"
    except ValueError:
        return f"{address}:{port}"


# -- data checks shared by the control plane's services (nats, etcd) ----------

OPEN_OPT_OUT = "armada_insecure_open_endpoints"


def is_loopback(address: str) -> bool:
    """Whether a bind address is reachable from this host only."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def open_endpoint(name: str, data: Mapping[str, Any], bind_key: str, guard_keys: tuple[str, ...], what: str,
                  risk: str) -> Iterable[DataError]:
    """Closed by default: a service bound beyond loopback (``bind_key``) needs one of ``guard_keys`` set (an API
    key, a password), unless the host's data opts out on purpose (armada_insecure_open_endpoints)."""
    address = data[bind_key]
    if is_loopback(address) or any(data[k] for k in guard_keys) or data[OPEN_OPT_OUT]:
        return
    guard = " or ".join(guard_keys)
    yield DataError(name, bind_key, address, f"{what} would listen beyond loopback with no {guard}: {risk}. Set "
                    f"{guard}, bind 127.0.0.1, or (an isolated, trusted network only) {OPEN_OPT_OUT}: true")


def service_tls_gaps(service: str, name: str, data: Mapping[str, Any]) -> list[DataError]:
    """TLS of ``service`` (nats, etcd) on one host (pure): a certificate comes with its key."""
    cert, key = f"{service}_tls_cert_file", f"{service}_tls_key_file"
    return [DataError(name, missing, None, f"{have} is set: {service} TLS needs both the certificate and its key "
                      "(files on the host)")
            for have, missing in ((cert, key), (key, cert)) if data.get(have) and not data.get(missing)]


def client_gaps(service: str, fleet) -> Iterable[DataError]:
    """A host using another host's ``service`` (nats or etcd) that needs a
    password must have that password too, and the CA of one that speaks TLS."""
    for name, data in fleet.hosts:
        other = fleet.control_plane(name, data)
        if other is None:
            continue
        cp_name, cp = other
        key = f"{service}_tls_ca_file"
        if cp[f"{service}_tls_cert_file"] and not data[key]:
            yield DataError(name, key, None, f"{cp_name}'s {service} speaks TLS: set {key} to the path of the CA "
                            "file (on this host) its certificate is checked against")
        # etcd's clients log in as etcd_client_user (never root): its password file on both hosts
        key = "etcd_client_password_file" if service == "etcd" else f"{service}_password_file"
        if cp[f"{service}_password_file"] and not data[key]:
            yield DataError(name, key, None, f"{cp_name}'s {service} requires a password: set {key} to the path "
                            "of that password's file on this host")
        elif service == "etcd" and cp["etcd_password_file"] and not cp[key]:
            yield DataError(cp_name, key, None, f"{name} uses this host's etcd, which requires a password: set "
                            f"{key} (the password of etcd_client_user, which armada creates)")
