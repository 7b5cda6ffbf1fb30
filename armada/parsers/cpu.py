"""CPU and memory: ``lscpu``, ``/proc/cpuinfo``, ``/proc/meminfo``, ``free``.

The CPU's architecture, microarchitecture (from ARM's MIDR or x86's
vendor/family/model), topology, NUMA nodes with CPUs and the features
inference tuning cares about; memory total and available.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from armada.parsers import ParseError

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
