"""Where the lab is: its hosts, their addresses and the lab's folders (no
side effects; armada.lab.hosts boots them, armada.lab.tls makes their
certificates)."""

from __future__ import annotations

import os
from dataclasses import dataclass

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
INCLUDE = "openssh-server,python3,systemd,systemd-sysv,dbus,iproute2,ca-certificates,procps"

BRIDGE = "armadabr0"
GATEWAY = "10.213.0.1"
PREFIX = 24
SUBNET = "10.213.0.0/24"
PROXY_PORT = 8888
PROXY_URL = f"http://{GATEWAY}:{PROXY_PORT}"
# where the secrets a cloud would deliver lie on every host (root-only files in a 0711 folder)
HOST_SECRETS_DIR = "/etc/armada-secrets"


@dataclass(frozen=True)
class LabHost:
    name: str  # host name, nspawn machine name, pyinfra inventory name
    arch: str  # what `uname -m` says inside
    debarch: str  # Debian architecture of its rootfs
    address: str  # eth0 address inside its namespace
    emulated: bool  # runs under qemu-user-static
    group: str  # pyinfra group in inventories/local.py
    boot_timeout: float  # seconds from nspawn start to "ready"

    @property
    def short(self) -> str:
        return self.name.removeprefix("armada-")

    @property
    def netns(self) -> str:  # armada-cp, armada-serve
        return f"armada-{self.short}"

    @property
    def mac(self) -> str:  # fixed per address: see _setup_host_network
        octets = [int(part) for part in self.address.split(".")]
        return "02:" + ":".join(f"{octet:02x}" for octet in octets) + ":00"

    @property
    def veth(self) -> str:  # root-side end of the pair, on the bridge (<= 15 chars)
        return f"armv-{self.short}"


HOSTS: tuple[LabHost, ...] = (
    LabHost("armada-cp", "aarch64", "arm64", "10.213.0.11", True, "control_plane", 240.0),
    LabHost("armada-serve", "x86_64", "amd64", "10.213.0.12", False, "serving", 120.0),
    LabHost("armada-serve2", "x86_64", "amd64", "10.213.0.13", False, "serving", 120.0),
)
HOSTS_BY_NAME = {host.name: host for host in HOSTS}

# Light hosts: x86_64 like the serving hosts (the same root filesystem cache),
# their own netns, no vLLM: control-plane and base roles only (an etcd
# cluster's members, fleet measurements). `armada lab up --light N` adds them;
# the count is kept in the lab dir so that later commands know them.
LIGHT_FIRST_OCTET = 101
LIGHT_MAX = 64


def light_host(index: int) -> LabHost:
    """Light host ``index`` (1-based): armada-light<index> at 10.213.0.<100 + index>."""
    if not 1 <= index <= LIGHT_MAX:
        raise ValueError(f"light host index {index}: 1..{LIGHT_MAX}")
    return LabHost(f"armada-light{index}", "x86_64", "amd64", f"10.213.0.{LIGHT_FIRST_OCTET - 1 + index}", False,
                   "light", 60.0)


def light_count_path() -> str:
    return os.path.join(lab_dir(), "light-hosts")


def light_count() -> int:
    """How many light hosts the lab has (0 when none were asked for)."""
    try:
        with open(light_count_path(), encoding="utf-8") as handle:
            return int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def light_hosts(count: int | None = None) -> tuple[LabHost, ...]:
    return tuple(light_host(i) for i in range(1, (light_count() if count is None else count) + 1))


def all_hosts() -> tuple[LabHost, ...]:
    """The lab's three hosts and its light hosts."""
    return HOSTS + light_hosts()


def lab_host(name: str) -> LabHost:
    """A lab host by name: one of the three, or a light host."""
    if name in HOSTS_BY_NAME:
        return HOSTS_BY_NAME[name]
    if name.startswith("armada-light") and name.removeprefix("armada-light").isdigit():
        return light_host(int(name.removeprefix("armada-light")))
    raise KeyError(name)


# --------------------------------------------------------------------- paths


def lab_dir() -> str:
    return os.environ.get("ARMADA_LAB_DIR") or "/var/tmp/armada-lab"


def key_path() -> str:
    return os.path.join(lab_dir(), "id_ed25519")


def known_hosts_path() -> str:
    return os.path.join(lab_dir(), "known_hosts")


def cache_path(debarch: str) -> str:
    return os.path.join(lab_dir(), "cache", f"{SUITE}-{debarch}.tar")


def host_dir(host: LabHost) -> str:
    return os.path.join(lab_dir(), "hosts", host.name)


def rootfs_path(host: LabHost) -> str:
    return os.path.join(host_dir(host), "rootfs")
