"""The operating system: its release, and whether dpkg was left half-done."""

from __future__ import annotations

from pyinfra.api import FactBase

from armada.commands.snapshot import SNAPSHOT_COMMANDS
from armada.facts.base import _process
from armada.parsers.system import OsInfo, parse_os_release


class OsRelease(FactBase):
    """Distribution, version, codename and package manager from /etc/os-release."""

    def command(self):
        return SNAPSHOT_COMMANDS["os-release.txt"]

    def process(self, output) -> OsInfo:
        return _process(parse_os_release, "\n".join(output))


class DpkgInterrupted(FactBase):
    """The packages a dpkg run left half-done when it was stopped midway (a
    host that lost power, a killed apt): files in /var/lib/dpkg/updates, which
    make every later apt refuse to run ("dpkg was interrupted, you must
    manually run 'dpkg --configure -a'"). Empty when dpkg finished."""

    @staticmethod
    def default():
        return []

    def command(self):
        return "ls -A /var/lib/dpkg/updates 2>/dev/null; true"

    def process(self, output):
        return [line.strip() for line in output if line.strip()]
