"""A whole host in one fact: the raw snapshot outputs, and the same parsed."""

from __future__ import annotations

from pyinfra.api import FactBase

from armada.commands.snapshot import SNAPSHOT_COMMANDS
from armada.facts.base import _process, sections_command, split_sections
from armada.parsers.host import HostFacts, host_facts_from_outputs


class RawSnapshot(FactBase):
    """The raw outputs of :data:`armada.commands.snapshot.SNAPSHOT_COMMANDS`, by file name."""

    def command(self):
        return sections_command(SNAPSHOT_COMMANDS)

    def process(self, output):
        return split_sections(output)


class HostSnapshot(RawSnapshot):
    """Everything the profile needs, parsed: CPU, memory, OS, PCI, nvidia-smi."""

    def process(self, output) -> HostFacts:
        return _process(host_facts_from_outputs, split_sections(output))
