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
