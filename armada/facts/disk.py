"""Free space and read-only state where a path is."""

from __future__ import annotations

from pyinfra.api import FactBase

from armada.commands.disk import disk_space_command
from armada.parsers.disk import parse_disk_space


class FreeSpace(FactBase):
    """Free space and read-only state where ``path`` is (or will be created)."""

    def command(self, path: str):
        return disk_space_command(path)

    def process(self, output):
        return parse_disk_space("\n".join(output))
