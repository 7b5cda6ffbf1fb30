"""A whole host: every raw output of a snapshot parsed into one ``HostFacts``.

The outputs are keyed by snapshot file name (the keys of
:data:`armada.commands.snapshot.SNAPSHOT_COMMANDS`, plus the fallback files
kept from other commands).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from armada.parsers.cpu import CpuInfo, MemInfo, parse_cpu, parse_free, parse_meminfo
from armada.parsers.gpu import (NVIDIA_DEVICE_NAMES, NvidiaGpu, PciDevice, parse_lspci, parse_nvidia_smi_csv,
                                parse_nvidia_smi_table, parse_pci)
from armada.parsers.system import OsInfo, Runtime, host_runtime, parse_os_release


@dataclass(frozen=True)
class HostFacts:
    # None when the snapshot holds no lscpu or /proc/cpuinfo (a GPU-only snapshot)
    cpu: CpuInfo | None
    memory: MemInfo | None
    os: OsInfo | None
    pci: tuple[PciDevice, ...] = ()
    nvidia_smi: tuple[NvidiaGpu, ...] = ()
    notes: tuple[str, ...] = field(default=())
    runtime: Runtime = Runtime(None, None, "not known")

    @property
    def grace_gpu(self) -> str | None:
        """The GPU's name when NVIDIA pairs it only with a Grace CPU (GH200, GB200, GB300, GB10)."""
        return next((g.name for g in self.nvidia_smi if g.grace_host), None)

    @property
    def arch(self) -> str | None:
        """The CPU architecture: from the CPU's outputs, else implied by a Grace-only GPU."""
        if self.cpu is not None:
            return self.cpu.arch
        return "aarch64" if self.grace_gpu else None

    @property
    def unified_memory(self) -> bool:
        """The GPU has no memory of its own and shares the host's (GB10)."""
        return any(g.unified_memory for g in self.nvidia_smi)

    @property
    def pci_gpus(self) -> tuple[PciDevice, ...]:
        return tuple(d for d in self.pci if d.is_nvidia_gpu)

    @property
    def gpu_count(self) -> int:
        # nvidia-smi counts what the driver exposes; PCI counts what is
        # plugged in, and is all there is before a driver is installed.
        return max(len(self.nvidia_smi), len(self.pci_gpus))

    @property
    def nvswitch_count(self) -> int:
        return sum(1 for d in self.pci if d.is_nvswitch)

    @property
    def gpu_name(self) -> str | None:
        if self.nvidia_smi and self.nvidia_smi[0].name:
            return self.nvidia_smi[0].name
        for dev in self.pci_gpus:
            if dev.device is not None:
                return "NVIDIA " + NVIDIA_DEVICE_NAMES.get(dev.device, f"device {dev.device:#06x}")
        return "NVIDIA (unknown model)" if self.pci_gpus else None


def host_facts_from_outputs(outputs: dict[str, str]) -> HostFacts:
    """Parse a host's raw outputs, keyed by snapshot file name.

    Any output may be missing. Where a host's snapshot was kept from other
    commands, the fallbacks are read: ``free.txt`` for memory, ``lspci.txt``
    for PCI, the plain ``nvidia-smi.txt`` table for GPUs.
    """
    text = {name: value for name, value in outputs.items() if value and value.strip()}
    lscpu, cpuinfo = text.get("lscpu.txt") or text.get("lscpu.partial.txt"), text.get("cpuinfo.txt")
    gpu_outputs = any(name in text for name in ("nvidia-smi.csv", "nvidia-smi.txt", "pci.txt", "lspci.txt"))
    notes = []
    if lscpu or cpuinfo or not gpu_outputs:
        cpu = parse_cpu(lscpu, cpuinfo)
    else:
        # a GPU-only snapshot (a GB200 tray's nvidia-smi): GPU decisions need only the GPUs
        cpu = None
        notes.append("no lscpu or /proc/cpuinfo output: CPU-dependent decisions are unknown")
    if "meminfo.txt" in text:
        memory = parse_meminfo(text["meminfo.txt"])
    elif "free.txt" in text:
        memory = parse_free(text["free.txt"])
        notes.append("memory from free(1) output: rounded figures")
    else:
        memory = None
    if memory is None:
        notes.append("no /proc/meminfo output: memory-based decisions use defaults")
    os_info = parse_os_release(text["os-release.txt"]) if "os-release.txt" in text else None
    if "pci.txt" in text:
        pci = parse_pci(text["pci.txt"])
    elif "lspci.txt" in text:
        pci = parse_lspci(text["lspci.txt"])
    else:
        pci = ()
    if "nvidia-smi.csv" in text:
        smi = parse_nvidia_smi_csv(text["nvidia-smi.csv"])
    elif "nvidia-smi.txt" in text:
        smi = parse_nvidia_smi_table(text["nvidia-smi.txt"])
    else:
        smi = ()
    runtime = host_runtime(text.get("python3.txt"), text.get("glibc.txt"), os_info)
    return HostFacts(cpu=cpu, memory=memory, os=os_info, pci=pci, nvidia_smi=smi, notes=tuple(notes), runtime=runtime)
