"""PCI devices (our /sys listing or lspci) and NVIDIA GPUs (nvidia-smi, CSV or table)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from armada.parsers import ParseError
from armada.parsers.cpu import _int

# ---------------------------------------------------------------------------
# PCI

NVIDIA_VENDOR = 0x10DE
# Device ids of data-center GPUs, from the PCI ID database (pci.ids).
NVIDIA_DEVICE_NAMES = {
    0x20B0: "A100 SXM4 40GB",
    0x20B2: "A100 SXM4 80GB",
    0x20B5: "A100 PCIe 80GB",
    0x2330: "H100 SXM5 80GB",
    0x2331: "H100 PCIe",
    0x2335: "H200 SXM 141GB",
    0x2342: "GH200",
}


@dataclass(frozen=True)
class PciDevice:
    address: str
    vendor: int
    pci_class: int  # 24-bit class code, e.g. 0x030200
    device: int | None = None

    @property
    def is_nvidia_gpu(self) -> bool:
        # 0x03xxxx: display controllers (VGA 0x0300, 3D 0x0302)
        return self.vendor == NVIDIA_VENDOR and self.pci_class >> 16 == 0x03

    @property
    def is_nvswitch(self) -> bool:
        # NVSwitches enumerate as "bridge, other" (0x0680) NVIDIA functions
        return self.vendor == NVIDIA_VENDOR and self.pci_class >> 8 == 0x0680


def parse_pci(text: str) -> tuple[PciDevice, ...]:
    """Our listing of /sys/bus/pci/devices: ``ADDRESS VENDOR CLASS [DEVICE]``."""
    devices = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            raise ParseError(f"PCI line needs ADDRESS VENDOR CLASS: {line!r}")
        try:
            devices.append(
                PciDevice(
                    address=parts[0],
                    vendor=int(parts[1], 16),
                    pci_class=int(parts[2], 16),
                    device=int(parts[3], 16) if len(parts) > 3 else None,
                )
            )
        except ValueError as exc:
            raise ParseError(f"bad PCI line {line!r}: {exc}") from None
    return tuple(devices)


_LSPCI_NUMERIC = re.compile(
    r"^(?P<addr>[0-9a-fA-F:.]+)\s+(?:.*?\[)?(?P<cls>[0-9a-fA-F]{4})\]?:\s+.*?"
    r"(?P<vendor>[0-9a-fA-F]{4}):(?P<device>[0-9a-fA-F]{4})"
)
_LSPCI_CLASS_NAMES = {
    "VGA compatible controller": 0x030000,
    "3D controller": 0x030200,
    "Bridge": 0x068000,
}


def parse_lspci(text: str) -> tuple[PciDevice, ...]:
    """``lspci -n``/``-nn`` lines, or plain ``lspci`` lines naming NVIDIA.

    For snapshots from hosts where only lspci output was kept.
    """
    devices = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        match = _LSPCI_NUMERIC.match(line)
        if match:
            devices.append(
                PciDevice(
                    address=match.group("addr"),
                    vendor=int(match.group("vendor"), 16),
                    pci_class=int(match.group("cls"), 16) << 8,
                    device=int(match.group("device"), 16),
                )
            )
            continue
        plain = re.match(r"^(\S+)\s+([^:]+):\s+NVIDIA Corporation", line)
        if plain and plain.group(2) in _LSPCI_CLASS_NAMES:
            devices.append(PciDevice(plain.group(1), NVIDIA_VENDOR, _LSPCI_CLASS_NAMES[plain.group(2)]))
    return tuple(devices)


# ---------------------------------------------------------------------------
# nvidia-smi (the query armada asks is armada.commands.snapshot.NVIDIA_SMI_QUERY)


@dataclass(frozen=True)
class NvidiaGpu:
    index: int | None
    name: str | None
    memory_mib: int | None
    driver_version: str | None
    compute_cap: str | None
    pci_bus_id: str | None
    persistence_mode: bool | None

    @property
    def grace_host(self) -> bool:
        """A GPU NVIDIA pairs only with its Grace CPU (an aarch64 host): GH200, GB200, GB300, GB10."""
        return bool(self.name and re.search(r"\b(GH200|GB200|GB300|GB10)\b", self.name))

    @property
    def unified_memory(self) -> bool:
        """No memory of its own (nvidia-smi says Not Supported): the GB10 shares the host's memory."""
        return self.memory_mib is None and bool(self.name and re.search(r"\bGB10\b", self.name))


def _csv_value(value: str) -> str | None:
    value = value.strip()
    return None if value in ("", "[N/A]", "N/A", "[Not Supported]") else value


def parse_nvidia_smi_csv(text: str) -> tuple[NvidiaGpu, ...]:
    """``nvidia-smi --query-gpu=... --format=csv`` with its header line.

    Columns are found by their header, so any subset of the query armada
    uses parses (outputs kept from other tools asked for other columns).
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ()
    header = [re.sub(r"\s*\[.*?\]\s*$", "", h.strip()) for h in next(csv.reader([lines[0]]))]
    if "name" not in header and "index" not in header:
        raise ParseError(f"nvidia-smi CSV has no index/name header: {lines[0]!r}")
    gpus = []
    for row in csv.reader(io.StringIO("\n".join(lines[1:]))):
        if len(row) != len(header):
            raise ParseError(f"nvidia-smi CSV row does not match header: {row!r}")
        values = {h: _csv_value(v) for h, v in zip(header, row)}
        memory = values.get("memory.total")
        persistence = values.get("persistence_mode")
        gpus.append(
            NvidiaGpu(
                index=_int(values.get("index")),
                name=values.get("name"),
                memory_mib=_int(memory.split()[0]) if memory else None,
                driver_version=values.get("driver_version"),
                compute_cap=values.get("compute_cap"),
                pci_bus_id=values.get("pci.bus_id"),
                persistence_mode=None if persistence is None else persistence.lower() == "enabled",
            )
        )
    return tuple(gpus)


_SMI_ROW = re.compile(
    r"^\|\s+(?P<index>\d+)\s+(?P<name>.+?)\s+(?P<pm>On|Off)\s+\|\s+(?P<bus>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d)"
)
_SMI_MEMORY = re.compile(r"(\d+)MiB\s*/\s*(\d+)MiB")
_SMI_NO_MEMORY = re.compile(r"\|\s*(Not Supported|N/A)\s*\|")


def parse_nvidia_smi_table(text: str) -> tuple[NvidiaGpu, ...]:
    """Plain ``nvidia-smi`` output, for snapshots where no CSV query was kept."""
    driver = re.search(r"Driver Version:\s*(\S+)", text)
    gpus: list[NvidiaGpu] = []
    pending: dict | None = None
    for line in text.splitlines():
        row = _SMI_ROW.match(line)
        if row:
            pending = row.groupdict()
            continue
        if pending is None:
            continue
        # the line under a GPU's row holds its memory: "used / total", or
        # "Not Supported" on a GPU with no memory of its own (GB10)
        memory = _SMI_MEMORY.search(line)
        if memory or _SMI_NO_MEMORY.search(line):
            gpus.append(
                NvidiaGpu(
                    index=int(pending["index"]),
                    name=pending["name"],
                    memory_mib=int(memory.group(2)) if memory else None,
                    driver_version=driver.group(1) if driver else None,
                    compute_cap=None,
                    pci_bus_id=pending["bus"],
                    persistence_mode=pending["pm"] == "On",
                )
            )
            pending = None
    return tuple(gpus)
