"""The operating system: its release, and whether dpkg was left half-done."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from armada.commands.snapshot import SNAPSHOT_COMMANDS
from armada.facts.base import _process
from armada.parsers.system import Account, OsInfo, parse_accounts, parse_os_release


class OsRelease(FactBase):
    """Distribution, version, codename and package manager from /etc/os-release."""

    def command(self):
        return SNAPSHOT_COMMANDS["os-release.txt"]

    def process(self, output) -> OsInfo:
        return _process(parse_os_release, "\n".join(output))


class Accounts(FactBase):
    """The named system accounts (their ids, home, shell, and the group of their own name),
    one ``getent`` per name: pyinfra's Users fact walks every account of /etc/passwd with several
    processes each, seconds on an emulated host, and its operations read it again each time."""

    def command(self, names):
        quoted = " ".join(shlex.quote(name) for name in names)
        return f'for n in {quoted}; do echo "$n|$(getent passwd "$n")|$(getent group "$n")"; done'

    def process(self, output) -> dict[str, Account | None]:
        return parse_accounts(output)


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
