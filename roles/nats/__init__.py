"""The nats role: nats-server with JetStream under its own systemd unit.

From the distro package (the distro's own unit is masked so that only
armada's runs) or from an upstream release tarball checked by sha256.
"""

import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server
from pyinfra.operations.util import any_changed

from armada.errors import DataError
from armada.facts.urls import UrlSha256
from armada.hardening import unit_hardening
from armada.masking import mask_url
from armada.role import Role, RoleRun
from armada.role_support import (
    client_gaps,
    managed_service,
    mask_distro_unit,
    open_endpoint,
    proxy_for,
    service_tls_gaps,
    template_path,
)
from roles.nats import health
from roles.nats.defaults import KEYS

UNIT = "armada-nats"


@deploy("armada nats")
def apply(run: RoleRun):
    data = run.data
    tpl = template_path(__file__)
    user = data["nats_service_user"]  # its own (the base role creates it)
    config = f"{data['armada_config_dir']}/nats.conf"

    if data["nats_source"] == "distro":
        mask_distro_unit("nats-server.service")
        apt.packages(name="nats-server package", packages=["nats-server"], _env={"DEBIAN_FRONTEND": "noninteractive"})
        binary = "/usr/sbin/nats-server"  # where Debian and Ubuntu ship it
    else:
        folder = release_dir(data)
        files.directory(name="nats release dir", path=folder, mode="755")
        tarball = files.download(
            name="nats release",
            src=data["nats_release_url"],
            dest=f"{folder}/nats-server.tar.gz",
            sha256sum=data["nats_release_sha256"],
        )
        server.shell(
            name="unpack nats release",
            commands=[f"tar -xzf {folder}/nats-server.tar.gz -C {folder} --strip-components=1"],
            _if=any_changed(tarball),
        )
        binary = f"{folder}/nats-server"

    # recursive: a store an older armada made belongs to armada_user until then
    files.directory(name="JetStream store", path=data["nats_store_dir"], user=user, group=user, mode="750",
                    recursive=True)
    conf = files.template(
        name="nats config",
        src=tpl("nats.conf.j2"),
        dest=config,
        mode="644",
        server_name=re.sub(r"[^A-Za-z0-9_-]", "_", host.name),
        listen=data["nats_listen"],
        port=data["nats_port"],
        monitor_port=data["nats_monitor_port"],
        store_dir=data["nats_store_dir"],
        password_file=data["nats_password_file"],
        nats_user=data["nats_user"],
        tls_cert_file=data["nats_tls_cert_file"],
        tls_key_file=data["nats_tls_key_file"],
    )
    written, launcher = [conf], None
    if data["nats_password_file"]:
        launcher = f"{data['armada_root']}/bin/armada-nats-start"
        written.append(files.template(name="nats launcher (reads the password file)", src=tpl("armada-nats-start.j2"),
                                      dest=launcher, mode="755", binary=binary, config=config,
                                      password_file=data["nats_password_file"]))
    unit = files.template(
        name="nats unit",
        src=tpl("armada-nats.service.j2"),
        dest=f"/etc/systemd/system/{UNIT}.service",
        mode="644",
        service_user=user,
        hardening=unit_hardening([data["nats_store_dir"]]),
        binary=binary,
        config=config,
        store_dir=data["nats_store_dir"],
        launcher=launcher,
    )
    managed_service(UNIT, unit, written, watched=[config, *([launcher] if launcher else [])])


def checks(name: str, data):
    """A release needs its URL and sha256; a TLS certificate needs its key."""
    if "nats" in data["armada_roles"] and data["nats_source"] == "release":
        for key in ("nats_release_url", "nats_release_sha256"):
            if not data[key]:
                yield DataError(name, key, None, f"nats_source 'release' needs {key} (the download is verified)")
    yield from service_tls_gaps("nats", name, data)
    if "nats" in data["armada_roles"]:
        yield from open_endpoint(name, data, "nats_listen", ("nats_password_file",), "nats",
                                 "any host on the network could publish to and read every subject and stream")


def release_dir(data) -> str:
    """Where a release is unpacked: one folder per sha256, so another release never overwrites the one serving."""
    return f"{data['armada_root']}/nats/{data['nats_release_sha256'][:12]}"


def preflight(run: RoleRun):
    """A release not unpacked yet is downloaded by the host and its sha256 compared before any change on any
    host: a wrong sha256 (or a tarball that changed upstream) stops the run with nothing installed."""
    data = run.data
    if data["nats_source"] != "release" or run.host.get_fact(File, path=f"{release_dir(data)}/nats-server"):
        return
    url, wanted = data["nats_release_url"], data["nats_release_sha256"]
    actual, problem = run.host.get_fact(UrlSha256, url=url, proxy=proxy_for(url, data))
    if problem:
        yield DataError(run.host.name, "nats_release_url", mask_url(url), f"could not be read from the host: {problem}")
    elif actual != wanted:
        yield DataError(run.host.name, "nats_release_sha256", wanted, f"{mask_url(url)} has sha256 {actual}: a "
                        "different file than the one named (nothing was installed)")


def urls(data, profile) -> list[tuple[str, str]]:
    if data["nats_source"] == "release" and data["nats_release_url"]:
        return [("nats_release_url", data["nats_release_url"])]
    return []


ROLE = Role(
    name="nats",
    doc="nats-server with JetStream under armada's own unit (the distro package or a release checked by sha256)",
    keys=KEYS,
    checks=checks,
    fleet_checks=lambda fleet: client_gaps("nats", fleet),
    preflight=preflight,
    urls=urls,
    apply=apply,
    health=health.checks,
    binds=("nats_port", "nats_monitor_port"),
)
