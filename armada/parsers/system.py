"""The operating system: ``/etc/os-release``, its family and package manager."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from armada.parsers import ParseError


@dataclass(frozen=True)
class OsInfo:
    id: str
    id_like: tuple[str, ...]
    version_id: str | None
    codename: str | None
    pretty_name: str | None

    @property
    def family(self) -> str:
        ids = (self.id, *self.id_like)
        if "debian" in ids or "ubuntu" in ids:
            return "debian"
        if {"rhel", "fedora", "centos", "amzn"} & set(ids):
            return "rhel"
        return self.id

    @property
    def package_manager(self) -> str | None:
        if self.family == "debian":
            return "apt"
        if self.family == "rhel":
            # Amazon Linux 2 and EL7 still have only yum
            if (self.id == "amzn" and self.version_id == "2") or (self.version_id or "").startswith("7"):
                return "yum"
            return "dnf"
        if self.id in ("sles", "opensuse-leap", "opensuse-tumbleweed"):
            return "zypper"
        return None


def parse_os_release(text: str) -> OsInfo:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key] = parts[0] if parts else ""
    if "ID" not in values:
        raise ParseError("no ID= line in /etc/os-release output")
    codename = values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME") or None
    return OsInfo(
        id=values["ID"],
        id_like=tuple(values.get("ID_LIKE", "").split()),
        version_id=values.get("VERSION_ID"),
        codename=codename,
        pretty_name=values.get("PRETTY_NAME"),
    )


# The python3 and glibc each apt release ships (the venvs are made with the distro's python3)
DISTRO_RUNTIME: dict[tuple[str, str], tuple[str, str]] = {
    ("debian", "11"): ("3.9", "2.31"),
    ("debian", "12"): ("3.11", "2.36"),
    ("debian", "13"): ("3.13", "2.41"),
    ("ubuntu", "20.04"): ("3.8", "2.31"),
    ("ubuntu", "22.04"): ("3.10", "2.35"),
    ("ubuntu", "24.04"): ("3.12", "2.39"),
}


@dataclass(frozen=True)
class Runtime:
    """The host's python3 (major.minor) and glibc versions, None when not known, and where they were read."""
    python: str | None
    glibc: str | None
    source: str


def parse_python_version(text: str | None) -> str | None:
    """``python3 --version`` ("Python 3.11.2") -> "3.11"."""
    for word in (text or "").split():
        parts = word.split(".")
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return f"{parts[0]}.{parts[1]}"
    return None


def parse_glibc_version(text: str | None) -> str | None:
    """``getconf GNU_LIBC_VERSION`` ("glibc 2.36") or ``ldd --version``'s first line
    ("ldd (Debian GLIBC 2.36-9+deb12u9) 2.36") -> "2.36"; None for another libc (musl)."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    if "glibc" not in line.lower() and "gnu libc" not in line.lower():
        return None
    words = [w for w in line.replace("-", " ").split() if w.count(".") >= 1 and w.split(".")[0].isdigit()]
    return ".".join(words[-1].split(".")[:2]) if words else None


def host_runtime(python_output: str | None, glibc_output: str | None, os_info: OsInfo | None) -> Runtime:
    """The host's python3 and glibc: read from the host, else the versions its OS release ships."""
    python, glibc = parse_python_version(python_output), parse_glibc_version(glibc_output)
    if python and glibc:
        return Runtime(python, glibc, "read on the host")
    shipped = DISTRO_RUNTIME.get((os_info.id, os_info.version_id or "")) if os_info else None
    if shipped:
        source = "read on the host" if python or glibc else f"what {os_info.id} {os_info.version_id} ships"
        return Runtime(python or shipped[0], glibc or shipped[1], source)
    return Runtime(python, glibc, "read on the host" if python or glibc else "not known")


@dataclass(frozen=True)
class Account:
    """A system account as ``getent`` shows it, with the group of its own name (None when absent)."""
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    own_group_gid: int | None

    @property
    def in_own_group(self) -> bool:
        return self.own_group_gid is not None and self.own_group_gid == self.gid


def parse_accounts(lines: list[str]) -> dict[str, Account | None]:
    """``NAME|<getent passwd NAME>|<getent group NAME>`` lines -> each name's account (None: no such user)."""
    accounts: dict[str, Account | None] = {}
    for line in lines:
        name, _, rest = line.strip().partition("|")
        passwd, _, group = rest.partition("|")
        if not name:
            continue
        fields = passwd.split(":")
        if len(fields) < 7:
            accounts[name] = None
            continue
        group_fields = group.split(":")
        own = int(group_fields[2]) if len(group_fields) >= 3 and group_fields[2].isdigit() else None
        accounts[name] = Account(name, int(fields[2]), int(fields[3]), fields[5], fields[6], own)
    return accounts
