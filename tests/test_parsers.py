"""Parsers, each on real outputs (tests/fixtures/*/SOURCE.md says where from)."""

import pytest

from armada.parsers import ParseError
from armada.parsers.cpu import format_cpu_list, parse_cpu, parse_cpu_list, parse_free, parse_meminfo
from armada.parsers.gpu import parse_lspci, parse_nvidia_smi_csv, parse_nvidia_smi_table, parse_pci
from armada.parsers.system import parse_os_release
from armada.parsers.torch import parse_torch_probe, parse_venv_probe
from conftest import fixture_text


def test_cpu_list_round_trip():
    assert parse_cpu_list("0-3,8,10-11") == (0, 1, 2, 3, 8, 10, 11)
    assert format_cpu_list((0, 1, 2, 3, 8, 10, 11)) == "0-3,8,10-11"
    assert format_cpu_list([5]) == "5"


def test_lscpu_wrapped_flags_are_joined_inside_words():
    # Graviton4's lscpu was printed on a terminal: Flags wrap mid-word
    cpu = parse_cpu(fixture_text("hosts", "graviton4", "lscpu.txt"), None)
    assert {"dcpop", "svepmull", "sve2", "bf16", "i8mm"} <= cpu.flags
    assert "d" not in cpu.flags and "cpop" not in cpu.flags


def test_gh200_numa_nodes_without_cpus_are_left_out():
    cpu = parse_cpu(fixture_text("hosts", "gh200", "lscpu.txt"), None)
    assert cpu.numa_node_count == 9
    assert cpu.numa_cpus == ((0, tuple(range(64))),)
    # a VM: "Socket(s): -" with "Cluster(s): 1"
    assert cpu.sockets == 1 and cpu.physical_cores == 64


def test_gb200_cut_lscpu_still_gives_arch_cpus_and_sockets():
    cpu = parse_cpu(fixture_text("hosts", "gb200", "lscpu.partial.txt"), None)
    assert cpu.arch == "aarch64"
    assert cpu.numa_node_count == 34
    assert [node for node, _ in cpu.numa_cpus] == [0, 1]
    assert cpu.logical_cpus == 144 and cpu.sockets == 2


@pytest.mark.parametrize(
    "host,file,implementer,part,microarch",
    [
        ("graviton2", "cpuinfo.txt", 0x41, 0xD0C, "Neoverse-N1"),
        ("graviton3", "cpuinfo.txt", 0x41, 0xD40, "Neoverse-V1"),
        ("gh200", "cpuinfo.txt", 0x41, 0xD4F, "Neoverse-V2"),
        ("ampere-altra", "cpuinfo.txt", 0x41, 0xD0C, "Neoverse-N1"),
        ("ampereone", "cpuinfo.txt", 0xC0, 0xAC4, "AmpereOne-AC04"),
        ("ampereone", "cpuinfo-ac3.txt", 0xC0, 0xAC3, "AmpereOne"),
    ],
)
def test_cpuinfo_alone_maps_midr_to_microarch(host, file, implementer, part, microarch):
    cpu = parse_cpu(None, fixture_text("hosts", host, file))
    assert cpu.arch == "aarch64"
    assert (cpu.implementer, cpu.part, cpu.microarch) == (implementer, part, microarch)


def test_cpuinfo_alone_counts_processors():
    cpu = parse_cpu(None, fixture_text("hosts", "ampereone", "cpuinfo.txt"))
    assert cpu.logical_cpus == 192 and cpu.vendor == "Ampere"
    assert {"bf16", "i8mm"} <= cpu.flags


def test_graviton3_old_kernel_cpuinfo_has_no_bf16_but_lscpu_does():
    # the c7g cpuinfo came from a kernel too old to report bf16
    assert not parse_cpu(None, fixture_text("hosts", "graviton3", "cpuinfo.txt")).has_bf16
    assert parse_cpu(fixture_text("hosts", "graviton3", "lscpu.txt"), None).has_bf16


def test_x86_lscpu_family_model():
    cpu = parse_cpu(fixture_text("hosts", "x86-h100", "lscpu.txt"), None)
    assert cpu.microarch == "Sapphire Rapids"
    assert cpu.threads_per_core == 2 and cpu.physical_cores == 104
    assert "avx512_bf16" in cpu.features and cpu.primary_threads is None


def test_parse_cpu_with_nothing_is_an_error():
    with pytest.raises(ParseError):
        parse_cpu("", "")


def test_meminfo():
    mem = parse_meminfo(fixture_text("hosts", "x86-lab-vm", "meminfo.txt"))
    assert 20 < mem.total_gib < 30 and mem.available_bytes <= mem.total_bytes


def test_free_h_gh200():
    mem = parse_free(fixture_text("hosts", "gh200", "free.txt"))
    assert mem.total_bytes == 525 * 2**30 and mem.available_bytes == 486 * 2**30


@pytest.mark.parametrize(
    "host,id_,version,codename,manager",
    [
        ("graviton2", "ubuntu", "24.04", "noble", "apt"),
        ("graviton3", "amzn", "2023", None, "dnf"),
        ("x86-lab-vm", "debian", "12", "bookworm", "apt"),
    ],
)
def test_os_release(host, id_, version, codename, manager):
    info = parse_os_release(fixture_text("hosts", host, "os-release.txt"))
    assert (info.id, info.version_id, info.codename, info.package_manager) == (id_, version, codename, manager)


def test_pci_listing_and_lspci_agree_on_the_same_machine():
    ours = parse_pci(fixture_text("hosts", "x86-lab-vm", "pci.txt"))
    for name in ("lspci-n.txt", "lspci-nn.txt"):
        theirs = parse_lspci(fixture_text("hosts", "x86-lab-vm", name))
        assert [(d.vendor, d.pci_class >> 8, d.device) for d in theirs] == [
            (d.vendor, d.pci_class >> 8, d.device) for d in ours
        ]
    assert not any(d.is_nvidia_gpu for d in ours)


def test_pci_line_errors():
    with pytest.raises(ParseError):
        parse_pci("0000:00:00.0 0x8086\n")


def test_nvidia_smi_csv_real_h100_capture_by_header():
    gpus = parse_nvidia_smi_csv(fixture_text("nvidia-smi-csv", "h100-ml-engineering.csv"))
    assert len(gpus) == 1
    assert gpus[0].name == "NVIDIA H100 80GB HBM3" and gpus[0].pci_bus_id == "00000000:04:00.0"
    assert gpus[0].memory_mib is None and gpus[0].driver_version is None


def test_nvidia_smi_csv_absent_is_empty():
    assert parse_nvidia_smi_csv("") == ()


def test_nvidia_smi_csv_error_text_is_a_parse_error():
    # what nvidia-smi prints when the driver is not loaded
    with pytest.raises(ParseError):
        parse_nvidia_smi_csv(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running."
        )


def test_nvidia_smi_table_gb200():
    gpus = parse_nvidia_smi_table(fixture_text("hosts", "gb200", "nvidia-smi.txt"))
    assert [g.pci_bus_id for g in gpus] == [
        "00000008:01:00.0", "00000009:01:00.0", "00000018:01:00.0", "00000019:01:00.0",
    ]
    assert {g.name for g in gpus} == {"NVIDIA GB200"}
    assert all(g.memory_mib == 189471 and g.persistence_mode and g.driver_version == "580.126.09" for g in gpus)


def test_torch_probe_real_cpu_build():
    build = parse_torch_probe(fixture_text("torch", "x86-lab-vm-torch-2.13.0+cpu.json"))
    assert build.version == "2.13.0+cpu" and build.cuda is None and not build.is_cuda_build
    assert build.device_count == 0


def test_torch_probe_absent_is_none():
    assert parse_torch_probe("Traceback (most recent call last):\nModuleNotFoundError: torch\n") is None


def test_venv_probe_distributions_first_then_torch():
    torch_line = fixture_text("torch", "x86-lab-vm-torch-2.13.0+cpu.json").strip()
    build, installed = parse_venv_probe('{"torch": "2.13.0+cpu", "pip": "24.0"}\n' + torch_line + "\n")
    assert build.version == "2.13.0+cpu" and installed == {"torch": "2.13.0+cpu", "pip": "24.0"}
    # torch did not import (its traceback went to stderr): the distributions are still read
    assert parse_venv_probe('{"pip": "24.0"}\n') == (None, {"pip": "24.0"})
    assert parse_venv_probe("") == (None, {})


def test_accounts_as_getent_prints_them_on_this_machine():
    import subprocess

    from armada.facts.system import Accounts
    from armada.parsers.system import parse_accounts

    command = Accounts().command(["root", "nobody", "armada-no-such-user"])
    lines = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout.splitlines()
    accounts = parse_accounts(lines)
    root = accounts["root"]
    assert (root.uid, root.gid, root.home, root.own_group_gid) == (0, 0, "/root", 0) and root.in_own_group
    assert accounts["nobody"].uid == 65534 and not accounts["nobody"].in_own_group  # nobody's group is nogroup
    assert accounts["armada-no-such-user"] is None


def test_prompt_throughput_is_read_from_a_real_prefill_workers_journal():
    """vLLM's periodic stats line is the witness that a prefill worker computed a prompt (its CPU time is
    not: a worker holding KV blocks for a remote decode spins in vLLM's queue)."""
    from armada.parsers.vllm import prompt_throughput_seen

    journal = fixture_text("vllm-stats/prefill-worker-after-a-request.log")
    assert prompt_throughput_seen(journal) == 4.0
    # the window after it (idle: the stats line says 0.0), and a window with no stats line at all
    idle = [line for line in journal.splitlines() if "18:43:14" in line]
    assert idle and prompt_throughput_seen("\n".join(idle)) == 0.0
    requests_only = [line for line in journal.splitlines() if "Avg prompt" not in line]
    assert "request received" in "\n".join(requests_only) and prompt_throughput_seen("\n".join(requests_only)) == 0.0
