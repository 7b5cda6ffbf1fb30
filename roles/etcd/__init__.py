"""The etcd role: etcd under its own systemd unit, one member by default, or a
cluster formed from an inventory group (``etcd_cluster_group``)."""

import re
import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server

from armada.commands.etcd import etcd_client_user_script, etcd_enable_auth_script
from armada.errors import DataError
from armada.hardening import unit_hardening
from armada.facts.secrets import EtcdAuth, EtcdLogin
from armada.role import Fleet, Role, RoleRun
from armada.role_support import (
    client_gaps,
    host_address,
    local_etcd,
    managed_service,
    mask_distro_unit,
    open_endpoint,
    service_tls_gaps,
    template_path,
)
from roles.etcd import health
from roles.etcd.defaults import CLIENT_PREFIX, KEYS

UNIT = "armada-etcd"


def member_name(inventory_host) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", inventory_host.name)


def cluster_settings(this_host, members: list, data: dict) -> dict:
    """ETCD_* values for one member of ``members`` (a pure function of the inventory)."""
    peer, client, listen = data["etcd_peer_port"], data["etcd_client_port"], data["etcd_listen"]
    address = host_address(this_host)
    scheme = "https" if data["etcd_tls_cert_file"] else "http"
    if len(members) > 1:
        # members must reach each other: peers listen on every interface, over
        # TLS when the host has a certificate (each member checks the others'
        # certificates against etcd_tls_ca_file)
        listen_peer = f"{scheme}://0.0.0.0:{peer}"
        advertise_peer = f"{scheme}://{address}:{peer}"
        initial = ",".join(f"{member_name(m)}={scheme}://{host_address(m)}:{peer}" for m in members)
    else:
        listen_peer = f"http://127.0.0.1:{peer}"
        advertise_peer = listen_peer
        initial = f"{member_name(this_host)}={listen_peer}"
    client_urls = [f"{scheme}://{listen}:{client}"]
    if listen not in ("127.0.0.1", "0.0.0.0"):
        client_urls.insert(0, f"{scheme}://127.0.0.1:{client}")
    advertise_host = address if listen in ("0.0.0.0", "::") else listen
    return {
        "member": member_name(this_host),
        "listen_client_urls": ",".join(client_urls),
        "advertise_client_url": f"{scheme}://{advertise_host}:{client}",
        "listen_peer_url": listen_peer,
        "advertise_peer_url": advertise_peer,
        "initial_cluster": initial,
        "peer_tls": len(members) > 1 and scheme == "https",
        # every client presents a certificate the CA signed (the data checks ask for TLS first)
        "client_cert_auth": scheme == "https" and data["etcd_client_cert_auth"],
    }


@deploy("armada etcd")
def apply(run: RoleRun):
    data, profile, inventory = run.data, run.profile, run.inventory
    tpl = template_path(__file__)
    user = data["etcd_service_user"]  # its own (the base role creates it)
    group = data["etcd_cluster_group"]
    members = list(inventory.get_group(group)) if group else [host]

    mask_distro_unit("etcd.service")
    apt.packages(name="etcd-server package", packages=["etcd-server"], _env={"DEBIAN_FRONTEND": "noninteractive"})
    # recursive: a data dir an older armada made belongs to armada_user until then
    files.directory(name="etcd data dir", path=data["etcd_data_dir"], user=user, group=user, mode="700",
                    recursive=True)
    env_file = f"{data['armada_config_dir']}/etcd.env"
    env = files.template(
        name="etcd env",
        src=tpl("etcd.env.j2"),
        dest=env_file,
        mode="644",
        data_dir=data["etcd_data_dir"],
        cluster_token=data["etcd_cluster_token"],
        unsupported_arch="arm64" if profile.arch == "aarch64" else None,
        cert_file=data["etcd_tls_cert_file"],
        key_file=data["etcd_tls_key_file"],
        ca_file=data["etcd_tls_ca_file"],
        **cluster_settings(host, members, data),
    )
    unit = files.template(
        name="etcd unit",
        src=tpl("armada-etcd.service.j2"),
        dest=f"/etc/systemd/system/{UNIT}.service",
        mode="644",
        service_user=user,
        hardening=unit_hardening([data["etcd_data_dir"]]),
        env_file=env_file,
        data_dir=data["etcd_data_dir"],
    )
    managed_service(UNIT, unit, [env], watched=[env_file])

    # users, roles and auth are the cluster's, replicated to every member: one member sets them up
    if data["etcd_password_file"] and host.name == members[0].name:
        endpoint, tls = local_etcd(data)
        if host.get_fact(EtcdAuth, endpoint=endpoint, tls=tls) != "enabled":
            script = etcd_enable_auth_script(endpoint, data["etcd_password_file"], tls=tls)
            server.shell(
                name="etcd auth: root user from etcd_password_file, auth enabled",
                commands=[f"bash -c {shlex.quote(script)}"],
            )
        client, client_file = data["etcd_client_user"], data["etcd_client_password_file"]
        if client_file and host.get_fact(EtcdLogin, endpoint=endpoint, user=client, password_file=client_file,
                                         tls=tls) != "ok":
            script = etcd_client_user_script(endpoint, data["etcd_password_file"], client, client_file,
                                             CLIENT_PREFIX, tls=tls)
            server.shell(
                name=f"etcd user {client}: readwrite on {CLIENT_PREFIX} only, password from etcd_client_password_file",
                commands=[f"bash -c {shlex.quote(script)}"],
            )


def checks(name: str, data):
    """A TLS certificate needs its key, and the CA it is checked against (this host's own checks and the auth
    setup use it)."""
    yield from service_tls_gaps("etcd", name, data)
    if data["etcd_tls_cert_file"] and not data["etcd_tls_ca_file"]:
        yield DataError(name, "etcd_tls_ca_file", None, "etcd_tls_cert_file is set: name the CA file its "
                        "certificate is checked against (this host's own checks use it)")
    if data["etcd_client_cert_auth"] and not data["etcd_tls_cert_file"]:
        yield DataError(name, "etcd_client_cert_auth", True, "asking clients for certificates needs TLS: set "
                        "etcd_tls_cert_file, etcd_tls_key_file and etcd_tls_ca_file")
    yield from client_cert_gaps(name, data, name, data)
    if "etcd" in data["armada_roles"]:
        yield from open_endpoint(name, data, "etcd_listen", ("etcd_password_file",), "etcd",
                                 "any host on the network could read and rewrite every key")


def client_cert_gaps(name: str, data, cp_name: str, cp) -> list[DataError]:
    """A host using an etcd that asks every client for a certificate (``cp``: that etcd's host data, its own
    when ``name`` is ``cp_name``) holds armada's client certificate and key, or armada could not even
    connect to check it."""
    if "etcd" not in cp["armada_roles"] or not cp["etcd_client_cert_auth"]:
        return []
    where = "this host's etcd" if name == cp_name else f"{cp_name}'s etcd"
    return [DataError(name, key, None, f"{where} asks every client for a certificate (etcd_client_cert_auth): "
                      f"set {key} to armada's client {what} (on this host; a certificate signed by "
                      "etcd_tls_ca_file, with no CommonName)")
            for key, what in (("etcd_tls_client_cert_file", "certificate"), ("etcd_tls_client_key_file", "key"))
            if not data[key]]


def fleet_checks(fleet: Fleet):
    """A cluster's group exists; a client of another host's etcd has its password, CA and client certificate."""
    for name, data in fleet.hosts:
        group = data["etcd_cluster_group"]
        if group and not fleet.groups.get(group):
            yield DataError(name, "etcd_cluster_group", group, "no such group in the inventory")
        elif group and len(fleet.groups[group]) > 1 and not data["etcd_tls_cert_file"] \
                and not data["armada_insecure_open_endpoints"]:
            yield DataError(name, "etcd_cluster_group", group, "a cluster's members replicate every key to each "
                            "other: set etcd_tls_cert_file, etcd_tls_key_file and etcd_tls_ca_file (peers then speak "
                            "TLS and check each other's certificate), or (an isolated, trusted network only) "
                            "armada_insecure_open_endpoints: true")
    yield from client_gaps("etcd", fleet)
    for name, data in fleet.hosts:
        other = fleet.control_plane(name, data)
        if other is not None:
            yield from client_cert_gaps(name, data, *other)


ROLE = Role(
    name="etcd",
    doc="etcd under armada's own unit: one member, or a cluster formed from an inventory group",
    keys=KEYS,
    checks=checks,
    fleet_checks=fleet_checks,
    apply=apply,
    health=health.checks,
    binds=("etcd_client_port", "etcd_peer_port"),
)
