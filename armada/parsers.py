"""Pure parsers for the raw outputs armada reads from a host.

Every function here takes text a real machine printed (``lscpu``,
``/proc/cpuinfo``, ``/proc/meminfo``, ``/etc/os-release``, a PCI listing,
``nvidia-smi --format=csv``, a JSON line about torch) and returns a frozen
dataclass. Nothing here touches a host: the pyinfra facts in
:mod:`armada.facts` and the offline snapshot reader both call these, so each
output is parsed in exactly one place.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from dataclasses import dataclass, field

# -- ARM: MIDR implementer/part -> microarchitecture ------------------------
# Sources: Arm's Technical Reference Manuals (MIDR_EL1 part numbers) and the
# table util-linux's lscpu uses (sys-utils/lscpu-arm.c).
ARM_IMPLEMENTERS = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x50: "APM",
    0x51: "Qualcomm",
    0x61: "Apple",
    0xC0: "Ampere",
}
ARM_PARTS = {
    (0x41, 0xD08): "Cortex-A72",  # AWS Graviton (first generation)
    (0x41, 0xD0B): "Cortex-A76",
    (0x41, 0xD0C): "Neoverse-N1",  # Graviton2, Ampere Altra / Altra Max
    (0x41, 0xD40): "Neoverse-V1",  # Graviton3
    (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4A): "Neoverse-E1",
    (0x41, 0xD4F): "Neoverse-V2",  # Graviton4, NVIDIA Grace
    (0x41, 0xD83): "Neoverse-V3AE",
    (0x41, 0xD84): "Neoverse-V3",
    (0x41, 0xD85): "Cortex-X925",
    (0x41, 0xD87): "Cortex-A725",
    (0x41, 0xD8E): "Neoverse-N3",
    (0x48, 0xD01): "TSV110",  # HiSilicon Kunpeng 920
    (0x4E, 0x004): "Carmel",
    (0x50, 0x000): "X-Gene",  # Ampere eMAG (APM implementer)
    (0xC0, 0xAC3): "AmpereOne",
    (0xC0, 0xAC4): "AmpereOne-AC04",
    (0xC0, 0xAC5): "AmpereOne-AC04_1",
}

# -- x86_64: (vendor, family, model) -> microarchitecture --------------------
# Server parts only; anything else is reported by family/model numbers.
X86_MODELS = {
    ("GenuineIntel", 6, 0x3F): "Haswell-X",
    ("GenuineIntel", 6, 0x4F): "Broadwell-X",
    ("GenuineIntel", 6, 0x55): "Skylake-SP/Cascade Lake",
    ("GenuineIntel", 6, 0x6A): "Ice Lake-SP",
    ("GenuineIntel", 6, 0x8F): "Sapphire Rapids",
    ("GenuineIntel", 6, 0xCF): "Emerald Rapids",
    ("GenuineIntel", 6, 0xAD): "Granite Rapids",
    ("GenuineIntel", 6, 0xAF): "Sierra Forest",
}
AMD_FAMILIES = {0x17: "Zen/Zen 2", 0x19: "Zen 3/Zen 4", 0x1A: "Zen 5"}

# CPU features that inference tuning cares about.
ARM_FEATURES = ("asimd", "asimddp", "asimdhp", "sve", "sve2", "bf16", "svebf16", "i8mm", "svei8mm", "sme")
X86_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile")


class ParseError(ValueError):
    """Raised when an output is present but cannot be understood."""


# ---------------------------------------------------------------------------
# CPU


@dataclass(frozen=True)
class CpuInfo:
    arch: str
    vendor: str | None
    model_name: str | None
    implementer: int | None
    part: int | None
    microarch: str
    logical_cpus: int
    physical_cores: int
    threads_per_core: int
    sockets: int
    numa_node_count: int
    # NUMA nodes that have CPUs: node id -> CPU ids, in node order
    numa_cpus: tuple[tuple[int, tuple[int, ...]], ...]
    flags: frozenset[str]
    # on SMT hosts, one logical CPU per physical core (from /proc/cpuinfo's
    # core ids); None when every logical CPU is its own core or it is unknown
    primary_threads: frozenset[int] | None = None

    @property
    def features(self) -> tuple[str, ...]:
        wanted = ARM_FEATURES if self.arch == "aarch64" else X86_FEATURES
        return tuple(f for f in wanted if f in self.flags)

    @property
    def has_bf16(self) -> bool:
        return bool({"bf16", "avx512_bf16", "amx_bf16"} & self.flags)


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """'0-3,8,10-11' -> (0, 1, 2, 3, 8, 10, 11)."""
    cpus: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            cpus.append(int(part))
    return tuple(cpus)


def format_cpu_list(cpus: tuple[int, ...] | list[int]) -> str:
    """(0, 1, 2, 3, 8) -> '0-3,8' (the form VLLM_CPU_OMP_THREADS_BIND takes)."""
    ranges: list[str] = []
    ordered = sorted(cpus)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        ranges.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(ranges)


def parse_key_values(text: str) -> dict[str, str]:
    """``Key: value`` lines (lscpu, /proc/meminfo); the first occurrence wins."""
    values: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        match = re.match(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$", line)
        if match:
            last = match.group(1) if match.group(1) not in values else None
            if last:
                values[last] = match.group(2)
        elif last and line.startswith(" ") and line.strip():
            # lscpu on a terminal wraps long values at a fixed width, even
            # inside a word ("lrcpc d" / "cpop"): join without a space
            values[last] += line.strip()
        else:
            last = None
    return values


def parse_cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    """/proc/cpuinfo -> one dict per ``processor`` block."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        if ":" in line:
            key, _, value = line.partition(":")
            current.setdefault(key.strip(), value.strip())
    if current:
        blocks.append(current)
    return [b for b in blocks if "processor" in b]


def _int(value: str | None, base: int = 10) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value or value == "-":
        return None
    try:
        return int(value, 0 if value.lower().startswith("0x") else base)
    except ValueError:
        return None


def _arm_microarch(implementer: int | None, part: int | None, model_name: str | None) -> str:
    if implementer is not None and part is not None and (implementer, part) in ARM_PARTS:
        return ARM_PARTS[(implementer, part)]
    # lscpu already maps MIDR to names like "Neoverse-V2"; trust it when the
    # raw part number is not known to us.
    if model_name and model_name not in ("-", "unknown"):
        return model_name
    if implementer is not None and part is not None:
        vendor = ARM_IMPLEMENTERS.get(implementer, f"{implementer:#x}")
        return f"{vendor} part {part:#05x}"
    return "unknown aarch64"


def _x86_microarch(vendor: str | None, family: int | None, model: int | None) -> str:
    if vendor == "GenuineIntel" and (vendor, family, model) in X86_MODELS:
        return X86_MODELS[(vendor, family, model)]
    if vendor == "AuthenticAMD" and family in AMD_FAMILIES:
        return AMD_FAMILIES[family]
    if family is not None and model is not None:
        return f"{vendor or 'x86_64'} family {family} model {model}"
    return "unknown x86_64"


def parse_cpu(lscpu: str | None, cpuinfo: str | None) -> CpuInfo:
    """Combine ``lscpu`` and ``/proc/cpuinfo`` (either may be missing)."""
    ls = parse_key_values(lscpu or "")
    blocks = parse_cpuinfo_blocks(cpuinfo or "")
    first = blocks[0] if blocks else {}
    if not ls and not blocks:
        raise ParseError("neither lscpu nor /proc/cpuinfo output has CPU data")

    arch = ls.get("Architecture")
    if not arch:
        # a cut lscpu output may lack its header but still carry Flags
        flag_guess = set((ls.get("Flags") or "").split())
        if "CPU implementer" in first or "asimd" in flag_guess:
            arch = "aarch64"
        elif "vendor_id" in first or "flags" in first or "sse2" in flag_guess:
            arch = "x86_64"
        else:
            raise ParseError("cannot tell the CPU architecture from lscpu or /proc/cpuinfo")

    flag_text = ls.get("Flags") or first.get("Features") or first.get("flags") or ""
    flags = frozenset(flag_text.split())

    # NUMA: lscpu prints "NUMA nodeN CPU(s): list", empty for CPU-less nodes
    # (GPU memory on Grace shows up as such nodes).
    numa: list[tuple[int, tuple[int, ...]]] = []
    for key, value in ls.items():
        match = re.fullmatch(r"NUMA node(\d+) CPU\(s\)", key)
        if match and value.strip():
            numa.append((int(match.group(1)), parse_cpu_list(value)))
    numa.sort()

    logical = _int(ls.get("CPU(s)")) or len(blocks) or sum(len(c) for _, c in numa)
    if not logical:
        raise ParseError("no CPU count in lscpu and no processor blocks in /proc/cpuinfo")
    threads_per_core = _int(ls.get("Thread(s) per core")) or 1
    sockets = _int(ls.get("Socket(s)")) or _int(ls.get("Cluster(s)"))
    cores_per_socket = _int(ls.get("Core(s) per socket")) or _int(ls.get("Core(s) per cluster"))
    if sockets is None and blocks and "physical id" in first:
        sockets = len({b.get("physical id") for b in blocks})
    if sockets is None and "Socket(s)" not in ls and "Cluster(s)" not in ls and len(numa) > 1:
        # header cut off: one CPU NUMA node per socket (Grace, Graviton metal)
        sockets = len(numa)
    sockets = sockets or 1
    if cores_per_socket:
        physical = cores_per_socket * sockets
    elif blocks and "core id" in first:
        physical = len({(b.get("physical id"), b.get("core id")) for b in blocks})
    else:
        physical = logical // threads_per_core

    numa_node_count = _int(ls.get("NUMA node(s)")) or max(len(numa), 1)
    if not numa:
        numa = [(0, tuple(range(logical)))]

    primary: list[int] = []
    seen_cores: set[tuple[str | None, str | None]] = set()
    if threads_per_core > 1 and blocks and "core id" in first:
        for block in blocks:
            core = (block.get("physical id"), block.get("core id"))
            if core not in seen_cores:
                seen_cores.add(core)
                primary.append(int(block["processor"]))

    model_name = ls.get("Model name") or first.get("model name")
    if arch == "aarch64":
        implementer = _int(first.get("CPU implementer"))
        part = _int(first.get("CPU part"))
        vendor_id = ls.get("Vendor ID")
        if implementer is not None:
            vendor = ARM_IMPLEMENTERS.get(implementer, vendor_id)
        else:
            vendor = vendor_id
        microarch = _arm_microarch(implementer, part, model_name)
    else:
        implementer = part = None
        vendor = ls.get("Vendor ID") or first.get("vendor_id")
        family = _int(ls.get("CPU family") or first.get("cpu family"))
        model = _int(ls.get("Model") or first.get("model"))
        microarch = _x86_microarch(vendor, family, model)

    return CpuInfo(
        arch=arch,
        vendor=vendor,
        model_name=model_name,
        implementer=implementer,
        part=part,
        microarch=microarch,
        logical_cpus=logical,
        physical_cores=physical,
        threads_per_core=threads_per_core,
        sockets=sockets,
        numa_node_count=numa_node_count,
        numa_cpus=tuple(numa),
        flags=flags,
        primary_threads=frozenset(primary) if primary else None,
    )


# ---------------------------------------------------------------------------
# Memory


@dataclass(frozen=True)
class MemInfo:
    total_bytes: int
    available_bytes: int

    @property
    def total_gib(self) -> float:
        return self.total_bytes / 2**30

    @property
    def available_gib(self) -> float:
        return self.available_bytes / 2**30


def parse_meminfo(text: str) -> MemInfo:
    values = parse_key_values(text)

    def kib(key: str) -> int | None:
        raw = values.get(key)
        if raw is None:
            return None
        match = re.match(r"(\d+)\s*kB", raw)
        return int(match.group(1)) * 1024 if match else None

    total = kib("MemTotal")
    if total is None:
        raise ParseError("no MemTotal line in /proc/meminfo output")
    available = kib("MemAvailable")
    if available is None:  # kernels before 3.14
        available = sum(kib(k) or 0 for k in ("MemFree", "Buffers", "Cached"))
    return MemInfo(total_bytes=total, available_bytes=available)


_FREE_UNITS = {"": 1024, "B": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_free(text: str) -> MemInfo:
    """``free``/``free -h`` output, for snapshots where no /proc/meminfo was kept.

    ``free -h`` rounds, so the figures are approximate.
    """
    header = None
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "total":
            header = parts
        elif parts and parts[0] == "Mem:" and header:
            values = dict(zip(header, parts[1:]))

            def size(raw: str) -> int:
                match = re.fullmatch(r"([\d.]+)([KMGT]i?|B)?", raw)
                if not match:
                    raise ParseError(f"bad size {raw!r} in free output")
                return int(float(match.group(1)) * _FREE_UNITS[match.group(2) or ""])

            total = size(values["total"])
            available = size(values["available"]) if "available" in values else size(values["free"])
            return MemInfo(total_bytes=total, available_bytes=available)
    raise ParseError("no Mem: line in free output")


# ---------------------------------------------------------------------------
# OS


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
# nvidia-smi

NVIDIA_SMI_QUERY = "index,name,memory.total,driver_version,compute_cap,pci.bus_id,persistence_mode"


@dataclass(frozen=True)
class NvidiaGpu:
    index: int | None
    name: str | None
    memory_mib: int | None
    driver_version: str | None
    compute_cap: str | None
    pci_bus_id: str | None
    persistence_mode: bool | None


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
        memory = _SMI_MEMORY.search(line)
        if pending and memory:
            gpus.append(
                NvidiaGpu(
                    index=int(pending["index"]),
                    name=pending["name"],
                    memory_mib=int(memory.group(2)),
                    driver_version=driver.group(1) if driver else None,
                    compute_cap=None,
                    pci_bus_id=pending["bus"],
                    persistence_mode=pending["pm"] == "On",
                )
            )
            pending = None
    return tuple(gpus)


# ---------------------------------------------------------------------------
# torch inside a venv

TORCH_PROBE = (
    "import json, torch; "
    "print(json.dumps({'version': torch.__version__, 'cuda': torch.version.cuda, "
    "'cuda_available': torch.cuda.is_available(), "
    "'device_count': torch.cuda.device_count() if torch.cuda.is_available() else 0, "
    "'path': torch.__file__}))"
)


@dataclass(frozen=True)
class TorchBuild:
    version: str
    cuda: str | None
    cuda_available: bool
    device_count: int
    path: str | None = None

    @property
    def is_cuda_build(self) -> bool:
        return self.cuda is not None


def parse_torch_probe(text: str) -> TorchBuild | None:
    """The JSON line printed by :data:`TORCH_PROBE`; None when torch is absent."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
                return TorchBuild(
                    version=data["version"],
                    cuda=data.get("cuda"),
                    cuda_available=bool(data.get("cuda_available")),
                    device_count=int(data.get("device_count") or 0),
                    path=data.get("path"),
                )
            except (ValueError, KeyError) as exc:
                raise ParseError(f"bad torch probe output {line!r}: {exc}") from None
    return None


DISTRIBUTIONS_PROBE = (
    "import json, importlib.metadata as md; "
    "print(json.dumps({d.metadata['Name']: d.version for d in md.distributions()}))"
)


def parse_distributions(text: str) -> dict[str, str]:
    """The JSON line printed by :data:`DISTRIBUTIONS_PROBE`: installed name -> version.

    Names are as the packages spell them; versions keep their local label
    (``2.13.0+cpu``), which ``pip freeze`` parsers tend to lose.
    """
    for line in reversed(text.splitlines()):
        if line.strip().startswith("{"):
            try:
                return {str(k): str(v) for k, v in json.loads(line).items()}
            except ValueError as exc:
                raise ParseError(f"bad distributions probe output: {exc}") from None
    return {}


# ---------------------------------------------------------------------------
# A whole host


@dataclass(frozen=True)
class HostFacts:
    cpu: CpuInfo
    memory: MemInfo | None
    os: OsInfo | None
    pci: tuple[PciDevice, ...] = ()
    nvidia_smi: tuple[NvidiaGpu, ...] = ()
    notes: tuple[str, ...] = field(default=())

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


# The raw outputs a host snapshot keeps, and the commands that print them.
# One table drives both the live fact and `armada snapshot`.
PCI_LISTING = (
    'for d in /sys/bus/pci/devices/*; do [ -e "$d/vendor" ] && '
    'echo "${d##*/} $(cat "$d/vendor") $(cat "$d/class") $(cat "$d/device")"; done'
)
SNAPSHOT_COMMANDS = {
    "lscpu.txt": "LC_ALL=C lscpu",
    "cpuinfo.txt": "cat /proc/cpuinfo",
    "meminfo.txt": "cat /proc/meminfo",
    "os-release.txt": "cat /etc/os-release",
    "pci.txt": PCI_LISTING,
    "nvidia-smi.csv": f"nvidia-smi --query-gpu={NVIDIA_SMI_QUERY} --format=csv",
}


def host_facts_from_outputs(outputs: dict[str, str]) -> HostFacts:
    """Parse a host's raw outputs, keyed by snapshot file name.

    Any output may be missing. Where a host's snapshot was kept from other
    commands, the fallbacks are read: ``free.txt`` for memory, ``lspci.txt``
    for PCI, the plain ``nvidia-smi.txt`` table for GPUs.
    """
    text = {name: value for name, value in outputs.items() if value and value.strip()}
    cpu = parse_cpu(text.get("lscpu.txt") or text.get("lscpu.partial.txt"), text.get("cpuinfo.txt"))
    notes = []
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
    return HostFacts(cpu=cpu, memory=memory, os=os_info, pci=pci, nvidia_smi=smi, notes=tuple(notes))


# ------------------------------------------------------------ URL reachability

# Run by the UrlStatus fact on the host (python3 when the host has no curl yet):
# prints "http <code>" when a server answered, or the client's error.
URL_PROBE_PY = r"""
import sys, urllib.error, urllib.request
url, proxy = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {}))
try:
    print("http", opener.open(urllib.request.Request(url, method="HEAD"), timeout=15).status)
except urllib.error.HTTPError as exc:
    print("http", exc.code)
except Exception as exc:
    print("error:", getattr(exc, "reason", None) or exc)
"""


def url_problem(output: str) -> str | None:
    """Why a URL probe's output (curl's or URL_PROBE_PY's) says the URL is not
    usable from the host; None when a server answered with anything but
    404/410 or a 5xx (an index may well answer 403 or 405 to a HEAD). Through
    a proxy, a server that cannot be reached shows as the proxy's 502/503/504."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    codes = [line.split()[1] for line in lines if line.startswith("http ") and len(line.split()) == 2]
    errors = [line for line in lines if line.startswith(("curl:", "error:"))]
    code = codes[-1] if codes else "000"
    if code.startswith("5"):
        return f"answers HTTP {code} (through a proxy: the proxy could not reach it)"
    if code != "000":
        return f"answers HTTP {code}: no such path" if code in ("404", "410") else None
    error = errors[0] if errors else (lines[-1] if lines else "no answer")
    if "CERTIFICATE_VERIFY_FAILED" in error or "curl: (60)" in error:
        return "untrusted certificate: " + error
    return "unreachable from the host: " + error


# ------------------------------------------------------------ disk space

def disk_space_command(path: str) -> str:
    """The nearest existing folder of ``path``, df's line for it and its mount options."""
    import shlex

    return (
        f"p={shlex.quote(path)}; while [ ! -e \"$p\" ]; do p=$(dirname \"$p\"); done; "
        "echo \"path $p\"; df -Pk \"$p\" | tail -n 1; echo \"options $(findmnt -no OPTIONS --target \"$p\")\""
    )


@dataclass(frozen=True)
class DiskSpace:
    existing: str  # the path itself, or its nearest existing parent
    available_bytes: int
    read_only: bool


def parse_disk_space(output: str) -> DiskSpace | None:
    existing, available, read_only = None, None, False
    for line in output.splitlines():
        if line.startswith("path "):
            existing = line[5:].strip()
        elif line.startswith("options "):
            read_only = "ro" in line[8:].strip().split(",")
        elif line.strip() and available is None:
            fields = line.split()
            if len(fields) >= 6 and fields[3].isdigit():
                available = int(fields[3]) * 1024
    if existing is None or available is None:
        return None
    return DiskSpace(existing, available, read_only)


def disk_problem(space: DiskSpace | None, path: str, needed: int | None) -> str | None:
    """Why ``path`` cannot take ``needed`` more bytes; None when it can."""
    if space is None:
        return None
    if space.read_only:
        return f"{space.existing} is on a read-only filesystem"
    if needed and space.available_bytes < needed:
        return (f"{space.available_bytes // 1024} KiB free at {space.existing}, "
                f"{needed // 1024} KiB needed ({path})")
    return None


# --- secret files (a file ON THE HOST holding a password, a token or a key) ---

# Characters a secret may hold: what `openssl rand -hex|-base64` and token
# generators produce. Anything else (quotes, spaces, backslashes) would have
# to be escaped on its way into JSON bodies and nats' config variable.
SECRET_CHARS = "A-Za-z0-9._~+/=:@-"


def _folders_let_through(f: str, user: str) -> str:
    """Shell that echoes ``closed-folder DIR MODE`` and exits when a folder above
    the (quoted) path ``f`` does not let ``user`` through."""
    return (
        f"d=$(dirname {f}); while :; do m=$(stat -c %a \"$d\"); o=$(stat -c %U \"$d\"); "
        f"case $m in *[1357]) ;; *) [ \"$o\" = {user} ] || {{ echo \"closed-folder $d $m\"; exit 0; }};; esac; "
        "[ \"$d\" = / ] && break; d=$(dirname \"$d\"); done; "
    )


def _plain_file_checks(f: str) -> str:
    """The start of an if-chain on the (quoted) path ``f``: it exists, is a
    regular file, readable, not empty."""
    return (f"if [ ! -e {f} ]; then echo missing; elif [ ! -f {f} ]; then echo not-a-file; "
            f"elif [ ! -r {f} ]; then echo unreadable; elif [ ! -s {f} ]; then echo empty; ")


def secret_file_command(path: str, service_user: str = "armada") -> str:
    """Shell that says what a secret file is like, never what it holds. The
    service user reads it (armada hands the file over): every folder above it
    must let that user through (searchable by others, or the user's own)."""
    import shlex

    f, user = shlex.quote(path), shlex.quote(service_user)
    return (
        _plain_file_checks(f) + f"elif [ \"$(grep -c '' {f})\" -gt 1 ]; then echo multiline; "
        f"elif LC_ALL=C grep -q '[^{SECRET_CHARS}]' {f}; then echo unsafe; else {_folders_let_through(f, user)}echo ok; fi"
    )


# what a TLS file of each kind must hold (its PEM block's first line)
PEM_KINDS = {"certificate": "-----BEGIN CERTIFICATE-----", "key": "-----BEGIN [A-Z ]*PRIVATE KEY-----"}


def pem_file_command(path: str, kind: str, service_user: str = "armada") -> str:
    """Shell that says whether a TLS file is usable (``kind``: 'certificate'
    or 'key'), never what it holds: a regular file the deploy user reads,
    holding a PEM block of that kind, below folders the service user passes."""
    import shlex

    f, user = shlex.quote(path), shlex.quote(service_user)
    return (
        _plain_file_checks(f) + f"elif ! grep -q -- {shlex.quote('^' + PEM_KINDS[kind] + '$')} {f}; then echo not-{kind}; "
        f"else {_folders_let_through(f, user)}echo ok; fi"
    )


_SECRET_PROBLEMS = {
    "missing": "no such file on the host (write it with your secret delivery before the run)",
    "not-a-file": "not a regular file on the host",
    "unreadable": "the deploy user cannot read it on the host",
    "empty": "the file on the host is empty",
    "multiline": "the file on the host holds more than one line (one secret, one line)",
    "unsafe": f"the secret holds characters other than {SECRET_CHARS} (e.g. use `openssl rand -hex 32`)",
}


def secret_file_problem(output: str) -> str | None:
    """The problem :func:`secret_file_command` reported, or None when the file is usable."""
    word = output.strip().splitlines()[-1].strip() if output.strip() else ""
    if word == "ok":
        return None
    if word.startswith("closed-folder "):
        _, folder, mode = word.split(" ", 2)
        return (f"the folder {folder} (mode {mode}) does not let the service user through to the file: "
                "make it searchable (chmod o+x, e.g. 0711)")
    for kind in PEM_KINDS:
        if word == f"not-{kind}":
            return f"the file on the host holds no PEM {kind} (a '{PEM_KINDS[kind].replace('[A-Z ]*', '')}' block)"
    return _SECRET_PROBLEMS.get(word, f"could not inspect the file: {output.strip()[-200:]!r}")


def etcd_auth_state(output: str) -> str:
    """etcd's answer to an unauthenticated v3 range request -> 'enabled', 'disabled' or 'unreachable'."""
    if "user name is empty" in output or "invalid auth token" in output or "permission denied" in output:
        return "enabled"
    if '"header"' in output:
        return "disabled"
    return "unreachable"


ETCD_CURL = "curl -sS --max-time 20 --noproxy '*' -X POST"


def etcd_curl(ca_file: str | None = None) -> str:
    """curl for etcd's v3 JSON API; over https it checks etcd's certificate
    against ``ca_file``."""
    import shlex

    return ETCD_CURL + (f" --cacert {shlex.quote(ca_file)}" if ca_file else "")


def etcd_login_body(password_file: str, user: str = "root") -> str:
    """Shell that prints etcd's JSON login body for ``user`` with the password in
    ``password_file``, for a pipe into ``curl -d @-``: printf is a shell
    builtin, so the password is in no process's argv."""
    import shlex

    return f"printf '{{\"name\":\"{user}\",\"password\":\"%s\"}}' \"$(cat {shlex.quote(password_file)})\""


def etcd_enable_auth_script(endpoint: str, password_file: str, user: str = "root", ca_file: str | None = None) -> str:
    """bash that creates etcd's root user with the password in ``password_file``
    (read on the host, sent in the request body through curl's stdin: never on
    a command line), grants it the root role and enables auth. Idempotent:
    an existing user is kept. Exit 0 only when auth ends up enabled."""
    import shlex

    base = endpoint.rstrip("/")
    curl = etcd_curl(ca_file)
    cacert = f" --cacert {shlex.quote(ca_file)}" if ca_file else ""
    return "\n".join([
        f"for i in $(seq 60); do curl -sf --noproxy '*'{cacert} {shlex.quote(base + '/health')} >/dev/null && break; sleep 1; done",
        f"state=$({curl} -d '{{\"key\":\"YQ==\"}}' {shlex.quote(base + '/v3/kv/range')})",
        'case "$state" in *"user name is empty"*) echo "etcd auth already enabled"; exit 0;; esac',
        f"{etcd_login_body(password_file, user)} | {curl} -d @- {shlex.quote(base + '/v3/auth/user/add')}; echo",
        f"{curl} -d '{{\"user\":\"{user}\",\"role\":\"root\"}}' {shlex.quote(base + '/v3/auth/user/grant')}; echo",
        f"out=$({curl} -d '{{}}' {shlex.quote(base + '/v3/auth/enable')}); echo \"$out\"",
        'case "$out" in *error*) exit 1;; esac',
    ])
