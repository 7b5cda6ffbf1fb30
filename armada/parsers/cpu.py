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

# -- The kernel's own feature names -----------------------------------------
# arm64: the Features line of /proc/cpuinfo (and lscpu's Flags) is hwcap_str
# of arch/arm64/kernel/cpuinfo.c, printed in this order. The list is finite:
# a pasted Flags value wrapped by a terminal is put back together with it.
ARM64_HWCAPS = (
    "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp", "cpuid",
    "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512", "sve", "asimdfhm",
    "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb", "paca", "pacg", "gcs", "cmpbr", "dcpodp", "sve2", "sveaes",
    "svepmull", "svebitperm", "svesha3", "svesm4", "flagm2", "frint", "svei8mm", "svef32mm", "svef64mm", "svebf16",
    "i8mm", "bf16", "dgh", "rng", "bti", "mte", "ecv", "afp", "rpres", "mte3", "sme", "smei16i64", "smef64f64",
    "smei8i32", "smef16f32", "smeb16f32", "smef32f32", "smefa64", "wfxt", "ebf16", "sveebf16", "cssc", "rprfm",
    "sve2p1", "sme2", "sme2p1", "smei16i32", "smebi32i32", "smeb16b16", "smef16f16", "mops", "hbc", "sveb16b16",
    "lrcpc3", "lse128", "fpmr", "lut", "faminmax", "f8cvt", "f8fma", "f8dp4", "f8dp2", "f8e4m3", "f8e5m2",
    "smelutv2", "smef8f16", "smef8f32", "smesf8fma", "smesf8dp4", "smesf8dp2", "poe", "sve2p2", "sme2p2",
    "ssve_bitperm", "ssve_fexpa", "ssve_aes", "sve_aes2", "sve_bfscale", "sve_f16mm", "sve_eltperm",
    "sme_sbitperm", "sme_aes", "sme_sf8dp2", "sme_smop4", "sme_stmop", "mte_far", "mte_store_only", "lsfe",
    "ls64",
)
# x86: the flags line (arch/x86/include/asm/cpufeatures.h names as printed).
X86_FLAGS = frozenset("""
fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 pn clflush dts acpi mmx fxsr sse sse2 ss
ht tm ia64 pbe syscall mp nx mmxext fxsr_opt pdpe1gb rdtscp lm 3dnowext 3dnow recovery longrun lrti cxmmx
k6_mtrr cyrix_arr centaur_mcr constant_tsc up art arch_perfmon pebs bts rep_good acc_power nopl xtopology
tsc_reliable nonstop_tsc cpuid extd_apicid amd_dcm aperfmperf rapl nonstop_tsc_s3 tsc_known_freq pni
pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 cid sdbg fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2
x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor rng rng_en ace ace_en ace2
ace2_en phe phe_en pmm pmm_en lahf_lm cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch
osvw ibs xop skinit wdt lwp fma4 tce nodeid_msr tbm topoext perfctr_core perfctr_nb bpext ptsc perfctr_llc
mwaitx ring3mwait cpuid_fault cpb epb cat_l3 cat_l2 cdp_l3 invpcid_single hw_pstate proc_feedback sme pti
retpoline retpoline_amd intel_ppin cdp_l2 ssbd mba sev perfmon_v2 ibrs ibpb stibp ibrs_enhanced tpr_shadow
vnmi flexpriority ept vpid ept_ad vmmcall fsgsbase tsc_adjust sgx bmi1 hle avx2 fdp_excptn_only smep bmi2
erms invpcid rtm cqm mpx rdt_a avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb intel_pt avx512pf
avx512er avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total
cqm_mbm_local split_lock_detect avx_vnni avx512_bf16 clzero irperf xsaveerptr rdpru wbnoinvd amd_ppin
amd_ssbd virt_ssbd amd_ssb_no cppc amd_ibpb amd_ibrs amd_stibp amd_stibp_always_on amd_psfd amd_ibpb_ret
dtherm ida arat pln pts hwp hwp_notify hwp_act_window hwp_epp hwp_pkg_req hfi npt lbrv svm_lock nrip_save
tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold avic v_vmsave_vmload vgif x2avic
v_spec_ctrl vnmi avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni
avx512_bitalg tme avx512_vpopcntdq la57 rdpid bus_lock_detect cldemote movdiri movdir64b enqcmd sgx_lc
overflow_recov succor smca avx512_4vnniw avx512_4fmaps fsrm avx512_vp2intersect srbds_ctrl md_clear
rtm_always_abort tsx_force_abort serialize hybrid_cpu tsxldtrk pconfig arch_lbr ibt amx_bf16 avx512_fp16
amx_tile amx_int8 flush_l1d arch_capabilities core_capabilities spec_ctrl intel_stibp ssbd
sev_es sev_snp debug_swap user_shstk vmsa_reg_prot avx_vnni_int8 avx_ne_convert amx_fp16 prefetchiti
avx_ifma cmpccxadd fzrm fsrs fsrc lkgs amx_complex avx_vnni_int16 sha512 sm3 sm4 flush_l1d
ibrs_enhanced ept_5level tsc_adjust xfd lam avx512_vbmi vme_pae
""".split())
KNOWN_FLAGS = frozenset(ARM64_HWCAPS) | X86_FLAGS
_ARM64_ORDER = {name: index for index, name in enumerate(ARM64_HWCAPS)}

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
    # heterogeneous CPUs (DGX Spark's GB10: 10 Cortex-X925 + 10 Cortex-A725):
    # one entry per core type, fastest first; () when lscpu names one type
    core_types: tuple["CoreType", ...] = ()
    # where the feature names came from: "cpuinfo", "lscpu" or "cpuinfo+lscpu"
    flags_source: str = "lscpu"

    @property
    def performance_cpus(self) -> frozenset[int] | None:
        """CPU ids of the fastest core type, when the types differ and /proc/cpuinfo said which CPU is which."""
        if len(self.core_types) > 1 and self.core_types[0].cpus:
            return frozenset(self.core_types[0].cpus)
        return None

    @property
    def features(self) -> tuple[str, ...]:
        wanted = ARM_FEATURES if self.arch == "aarch64" else X86_FEATURES
        return tuple(f for f in wanted if f in self.flags)

    @property
    def has_bf16(self) -> bool:
        return bool({"bf16", "avx512_bf16", "amx_bf16"} & self.flags)


@dataclass(frozen=True)
class CoreType:
    """One kind of core on a heterogeneous CPU, as lscpu lists it in its own block."""

    name: str
    cores: int
    max_mhz: float | None = None
    # CPU ids of this type (from /proc/cpuinfo's CPU part); () when unknown
    cpus: tuple[int, ...] = ()


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


_KEY_LINE = re.compile(r"^[ \t]*(?P<key>[^:\t ][^:]*?)[ \t]*:[ \t]?(?P<gap>[ \t]*)(?P<value>.*?)[ \t]*$")
_FLAG_WORDS = re.compile(r"^[a-z0-9_]+( [a-z0-9_]+)*$")
FLAG_KEYS = ("Flags", "Features", "flags")


def _flag_gap(left: str, right: str, before: str | None, after: str | None) -> bool | None:
    """Whether a wrap between ``left`` and ``right`` fell between two feature
    names (True), inside one (False), or the names cannot tell (None).

    The kernel's list of names decides: lscpu cuts at a fixed width, inside a
    word or between two; pasting often loses the spaces that said which.
    """
    joined = left + right
    known_joined, known_left, known_right = joined in KNOWN_FLAGS, left in KNOWN_FLAGS, right in KNOWN_FLAGS
    if known_joined and not (known_left and known_right):
        return False
    if known_left and known_right and not known_joined:
        return True
    if known_joined:
        # both readings are names ("sve" "aes" / "sveaes"): arm64 prints its
        # hwcaps in the kernel's order, so the reading that keeps it wins
        def ordered(*names: str | None) -> bool:
            ranks = [_ARM64_ORDER[n] for n in names if n in _ARM64_ORDER]
            return len(ranks) == len([n for n in names if n]) and ranks == sorted(ranks)

        split_ok, join_ok = ordered(before, left, right, after), ordered(before, joined, after)
        if split_ok != join_ok:
            return split_ok
        return None
    if known_left or known_right:
        return True
    return None


def _join_wrapped(key: str, value: str, piece: str, spaced: bool | None) -> str:
    """``value`` continued by the wrapped line ``piece``."""
    if not value:
        return piece
    if key in FLAG_KEYS:
        head, tail = value.split(), piece.split()
        gap = _flag_gap(head[-1], tail[0], head[-2] if len(head) > 1 else None, tail[1] if len(tail) > 1 else None)
        if gap is None:
            gap = bool(spaced)
    else:
        gap = bool(spaced)
    return value + (" " if gap else "") + piece


def parse_key_value_pairs(text: str) -> list[tuple[str, str]]:
    """``Key: value`` lines in order (lscpu, /proc/meminfo), as pasted by people.

    Continuation lines (lscpu wraps long values at the terminal's width) are
    joined to their value whether indented with spaces, tabs or not at all
    (a Flags value); whether a wrap fell inside a word or between two is
    decided by the kernel's feature names for Flags, by the whitespace the
    paste kept for other values.
    """
    pairs: list[list] = []
    open_value = False  # the last line was a key line or one of its continuations
    value_column: int | None = None
    previous_raw = ""
    for raw in text.splitlines():
        line = raw.rstrip("\n\r")
        match = _KEY_LINE.match(line)
        stripped = line.strip()
        indented = line[:1] in (" ", "\t")
        if match and not (open_value and pairs and pairs[-1][0] in FLAG_KEYS and _FLAG_WORDS.match(stripped)):
            key = match.group("key").strip()
            pairs.append([key, match.group("value")])
            open_value = True
            value_column = None if "\t" in line else match.start("value")
        elif open_value and pairs and stripped and (indented or (pairs[-1][0] in FLAG_KEYS and _FLAG_WORDS.match(stripped))):
            spaced = None
            if previous_raw != previous_raw.rstrip():
                spaced = True
            elif value_column is not None and "\t" not in line and len(line) - len(line.lstrip(" ")) > value_column:
                spaced = True
            pairs[-1][1] = _join_wrapped(pairs[-1][0], pairs[-1][1], stripped, spaced)
        else:
            open_value = False
        previous_raw = line
    return [(key, value) for key, value in pairs]


def parse_key_values(text: str) -> dict[str, str]:
    """``Key: value`` lines (lscpu, /proc/meminfo); the first occurrence wins."""
    values: dict[str, str] = {}
    for key, value in parse_key_value_pairs(text):
        values.setdefault(key, value)
    return values


# keys lscpu prints inside each core type's block (after its "Model name")
_CORE_TYPE_KEYS = frozenset({
    "Model", "Thread(s) per core", "Core(s) per socket", "Core(s) per cluster", "Socket(s)", "Cluster(s)",
    "Stepping", "CPU(s) scaling MHz", "CPU max MHz", "CPU min MHz", "BogoMIPS", "Flags", "Frequency boost",
    "CPU family", "BIOS Model name", "BIOS CPU family",
})


def lscpu_core_blocks(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """One dict per ``Model name`` block when lscpu lists several core types; [] otherwise."""
    if sum(1 for key, _ in pairs if key == "Model name") < 2:
        return []
    blocks: list[dict[str, str]] = []
    for key, value in pairs:
        if key == "Model name":
            blocks.append({"Model name": value})
        elif blocks and key in _CORE_TYPE_KEYS:
            blocks[-1].setdefault(key, value)
    return blocks


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


def _cpuinfo_flags(blocks: list[dict[str, str]]) -> frozenset[str]:
    """The features every processor of /proc/cpuinfo has (heterogeneous cores may differ)."""
    sets = [frozenset((b.get("Features") or b.get("flags") or "").split()) for b in blocks]
    sets = [f for f in sets if f]
    return frozenset.intersection(*sets) if sets else frozenset()


def _core_types(blocks: list[dict[str, str]], cpuinfo: list[dict[str, str]]) -> tuple[CoreType, ...]:
    """lscpu's core-type blocks, fastest first, with their CPU ids where /proc/cpuinfo names each CPU's part."""
    cpus_by_name: dict[str, list[int]] = {}
    for block in cpuinfo:
        implementer, part = _int(block.get("CPU implementer")), _int(block.get("CPU part"))
        if implementer is not None and part is not None and "processor" in block:
            name = ARM_PARTS.get((implementer, part), f"{implementer:#x}:{part:#05x}")
            cpus_by_name.setdefault(name, []).append(int(block["processor"]))
    types = []
    for block in blocks:
        name = block["Model name"]
        cores = (_int(block.get("Core(s) per socket")) or _int(block.get("Core(s) per cluster")) or 0) * (
            _int(block.get("Socket(s)")) or _int(block.get("Cluster(s)")) or 1)
        try:
            max_mhz = float(block["CPU max MHz"]) if block.get("CPU max MHz") else None
        except ValueError:
            max_mhz = None
        types.append(CoreType(name=name, cores=cores, max_mhz=max_mhz, cpus=tuple(cpus_by_name.get(name, ()))))
    return tuple(sorted(types, key=lambda t: -(t.max_mhz or 0)))


def parse_cpu(lscpu: str | None, cpuinfo: str | None) -> CpuInfo:
    """Combine ``lscpu`` and ``/proc/cpuinfo`` (either may be missing), as
    captured by armada or as pasted by people: wrapped Flags, tabs, a cut
    header, ``Socket(s): -``, several core-type blocks (their cores summed)."""
    pairs = parse_key_value_pairs(lscpu or "")
    ls: dict[str, str] = {}
    for key, value in pairs:
        ls.setdefault(key, value)
    core_blocks = lscpu_core_blocks(pairs)
    blocks = parse_cpuinfo_blocks(cpuinfo or "")
    first = blocks[0] if blocks else {}
    if not ls and not blocks:
        raise ParseError("neither lscpu nor /proc/cpuinfo output has CPU data")

    arch = ls.get("Architecture") or next(
        (v for k, v in ls.items() if len(k) >= 5 and "Architecture".endswith(k) and v in ("aarch64", "x86_64")), None)
    if not arch:
        # a cut lscpu output may lack its header but still carry Flags
        flag_guess = set((ls.get("Flags") or "").split())
        if "CPU implementer" in first or "asimd" in flag_guess:
            arch = "aarch64"
        elif "vendor_id" in first or "flags" in first or "sse2" in flag_guess:
            arch = "x86_64"
        else:
            raise ParseError("cannot tell the CPU architecture from lscpu or /proc/cpuinfo")

    # /proc/cpuinfo never wraps: its names come first; lscpu's Flags (every
    # core type's, when there are several) add only names the kernel knows
    lscpu_sets = [frozenset((b.get("Flags") or "").split()) for b in core_blocks] or [
        frozenset((ls.get("Flags") or "").split())]
    lscpu_sets = [f for f in lscpu_sets if f]
    lscpu_flags = frozenset.intersection(*lscpu_sets) if lscpu_sets else frozenset()
    proc_flags = _cpuinfo_flags(blocks)
    if proc_flags:
        flags = proc_flags | (lscpu_flags & KNOWN_FLAGS)
        flags_source = "cpuinfo+lscpu" if lscpu_flags - proc_flags & KNOWN_FLAGS else "cpuinfo"
    else:
        flags, flags_source = lscpu_flags, "lscpu"
    core_types = _core_types(core_blocks, blocks)

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
    if len(core_types) > 1 and all(t.cores for t in core_types):
        # several core types (GB10): each block counts only its own cores
        physical = sum(t.cores for t in core_types)
    elif cores_per_socket:
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
    if len(core_types) > 1:
        model_name = " + ".join(f"{t.cores}x {t.name}" for t in core_types)
    if arch == "aarch64":
        implementer = _int(first.get("CPU implementer"))
        part = _int(first.get("CPU part"))
        vendor_id = ls.get("Vendor ID")
        if implementer is not None:
            vendor = ARM_IMPLEMENTERS.get(implementer, vendor_id)
        else:
            vendor = vendor_id
        if len(core_types) > 1:
            microarch = " + ".join(t.name for t in core_types)
        else:
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
        core_types=core_types if len(core_types) > 1 else (),
        flags_source=flags_source,
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
