"""CPU (architecture, topology, NUMA, features) and memory."""

from __future__ import annotations

from pyinfra.api import FactBase

from armada.commands.snapshot import SNAPSHOT_COMMANDS
from armada.facts.base import _process, sections_command, split_sections
from armada.parsers.cpu import CpuInfo, MemInfo, parse_cpu, parse_meminfo


class Cpu(FactBase):
    """CPU architecture, microarchitecture, topology, NUMA nodes with CPUs, features."""

    def command(self):
        return sections_command({k: SNAPSHOT_COMMANDS[k] for k in ("lscpu.txt", "cpuinfo.txt")})

    def process(self, output) -> CpuInfo:
        sections = split_sections(output)
        return _process(parse_cpu, sections.get("lscpu.txt"), sections.get("cpuinfo.txt"))


class Memory(FactBase):
    """MemTotal and MemAvailable from /proc/meminfo."""

    def command(self):
        return SNAPSHOT_COMMANDS["meminfo.txt"]

    def process(self, output) -> MemInfo:
        return _process(parse_meminfo, "\n".join(output))
