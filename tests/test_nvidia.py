"""Grace GPU hosts: what the nvidia role would install, the GPU profile, the GPU
checks, on real GH200 / GB200 / H100 snapshots; and nothing of it on Graviton."""

import pytest
from conftest import build_profile, fixture_text, host_dir

from armada.parsers.gpu import parse_nvidia_smi_table
from armada.parsers.host import host_facts_from_outputs
from armada.schema import with_defaults
from armada.serving import install_id
from armada.snapshot import read_snapshot
from roles.nvidia import NvidiaPlanError, nvidia_plan
from roles.nvidia.health import evaluate_gpus


def profile_of(name, **data):
    return build_profile(name, host_facts_from_outputs(read_snapshot(host_dir(name))), data)


def data(**values):
    return with_defaults(values)


def test_gh200_on_ubuntu_2404():
    # no os-release was kept for the GH200 snapshot; Ubuntu 24.04 is assumed here
    profile = profile_of("gh200")
    plan = nvidia_plan(profile, data(), "ubuntu", "24.04")
    assert plan.repo_url == "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/sbsa/"
    assert plan.keyring_url.endswith("/ubuntu2404/sbsa/cuda-keyring_1.1-1_all.deb")
    assert plan.driver_packages == ("nvidia-open-580",) and plan.pin_packages == ()
    assert plan.extra_packages == () and plan.services == ("nvidia-persistenced",)
    # the rest of what would be applied on this host
    assert profile.torch_index_url is None and profile.torch_spec == "torch==2.13.0"
    assert profile.vllm_spec == "vllm==0.31.0" and profile.tensor_parallel_size == 1
    assert profile.gpu_memory_utilization == 0.9 and profile.dtype == "bfloat16"
    assert dict(profile.gpu_env) == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def test_gb200_tray_with_imex_on_debian_and_a_newer_branch():
    profile = profile_of("gb200")
    plan = nvidia_plan(profile, data(nvidia_imex=True, nvidia_driver_branch="590"), "debian", "12")
    assert plan.repo_url.endswith("/debian12/sbsa/")
    assert plan.pin_packages == ("nvidia-driver-pinning-590",) and plan.driver_packages == ("nvidia-open",)
    assert plan.extra_packages == ("nvidia-imex",) and "nvidia-imex" in plan.services
    # a GB200 tray has no NVSwitch on its PCI bus: no fabric manager
    assert "nvidia-fabricmanager" not in plan.services
    assert profile.tensor_parallel_size == 4
    assert dict(profile.gpu_env) == {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "VLLM_WORKER_MULTIPROC_METHOD": "spawn", "NCCL_DEBUG": "WARN",
    }
    assert "NCCL" in profile.reasons["gpu_env"]


def test_older_branch_keeps_branch_named_packages_and_a_mirror():
    plan = nvidia_plan(profile_of("x86-h100"), data(nvidia_driver_branch="570", nvidia_fabricmanager="yes",
                                                    nvidia_cuda_toolkit="12-8",
                                                    nvidia_repo_mirror="https://mirror.lab/cuda/repos"),
                       "ubuntu", "22.04")
    assert plan.repo_url == "https://mirror.lab/cuda/repos/ubuntu2204/x86_64/"
    assert plan.extra_packages == ("nvidia-fabricmanager-570", "cuda-toolkit-12-8")


def test_graviton_gets_none_of_it():
    profile = profile_of("graviton4")
    assert nvidia_plan(profile, data(), "ubuntu", "24.04") is None
    assert profile.accelerator == "cpu" and profile.gpu_env == {}
    assert profile.torch_index_url == "https://download.pytorch.org/whl/cpu"


def test_unknown_distro_is_refused_by_name():
    with pytest.raises(NvidiaPlanError, match="amzn 2023"):
        nvidia_plan(profile_of("gh200"), data(), "amzn", "2023")


def test_gpu_and_cpu_hosts_never_share_an_install():
    assert install_id(profile_of("gh200"), data()) != install_id(profile_of("gh200", vllm_accelerator="cpu"), data())


def test_gpu_checks_on_the_real_gb200_listing():
    gpus = parse_nvidia_smi_table(fixture_text("hosts", "gb200", "nvidia-smi.txt"))
    checks = {c.check: c for c in evaluate_gpus("gb", gpus, profile_of("gb200"), "580")}
    assert checks["nvidia-smi sees the GPUs"].ok and checks["persistence mode on"].ok
    assert checks["driver >= branch 580"].ok and checks["driver >= branch 580"].seen == "580.126.09"
    # the GH200 VM's driver 570 is older than a 580 pin
    gh = parse_nvidia_smi_table(fixture_text("hosts", "gh200", "nvidia-smi.txt"))
    assert not {c.check: c for c in evaluate_gpus("gh", gh, profile_of("gh200"), "580")}["driver >= branch 580"].ok
    # and a host whose driver sees fewer GPUs than PCI has fails
    assert not evaluate_gpus("gb", gpus[:3], profile_of("gb200"), "580")[0].ok


# ---------------------------------------------- driver changes gated by health

REBOOT = "reboot for the new NVIDIA kernel module, GPUs healthy before the next host"
# what nvidia-smi prints when the kernel module did not load (after a failed driver change)
NO_DRIVER = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the "
             "latest NVIDIA driver is installed and running.")


def gh200_plan(**options):
    from pyinfra.facts.deb import DebPackages
    from roleplan import plan

    from armada import registry
    from armada.facts.system import OsRelease
    from armada.parsers.system import parse_os_release

    facts = {OsRelease: parse_os_release('ID=ubuntu\nVERSION_ID="22.04"\n'), DebPackages: {}}
    return plan(registry.role("nvidia"), {"armada_roles": ["base", "nvidia"]}, facts, snapshot="gh200", **options)


def test_a_driver_change_reboots_host_by_host_each_gated_by_its_gpus():
    planned = gh200_plan()
    reboot = planned.op(REBOOT)
    assert reboot.serial  # one host at a time
    # the gate first (an earlier host that came back red stops this one), pyinfra's own reboot, then the GPUs
    assert reboot.commands[0] == "call <lambda>" and reboot.commands[-1] == "call gpus_healthy"
    assert any("reboot" in command for command in reboot.commands)
    assert planned.names().index("NVIDIA driver (open kernel modules)") < planned.names().index(REBOOT)


def test_an_upgrades_first_phase_leaves_the_driver_for_the_hosts_own_batch():
    names = gh200_plan(build_only=True).names()
    assert "NVIDIA driver (open kernel modules)" not in names and REBOOT not in names
    assert "cuda-keyring package" in names  # the repository itself is harmless


def test_the_first_red_host_stops_every_later_reboot_and_is_named():
    from roles.nvidia import RebootGate, RebootGateClosed

    gb200 = profile_of("gb200")
    healthy = evaluate_gpus("tray1", parse_nvidia_smi_table(fixture_text("hosts", "gb200", "nvidia-smi.txt")),
                            gb200, "580")
    gate = RebootGate()
    assert gate.before("tray1") and gate.after("tray1", healthy)
    assert gate.before("tray2")
    red = evaluate_gpus("tray2", (), gb200, "580")
    with pytest.raises(RebootGateClosed, match=r"tray2: its GPUs are not healthy .*nvidia-smi sees the GPUs: 0 of 4"):
        gate.after("tray2", red)
    with pytest.raises(RebootGateClosed, match=r"tray3: not rebooted for its new driver: tray2 \(nvidia-smi sees"):
        gate.before("tray3")


def test_device_checks_say_what_nvidia_smi_said_when_the_driver_is_gone():
    from roles.nvidia.health import checks_of_answer

    checks = checks_of_answer("tray2", False, NO_DRIVER, profile_of("gb200"), "580")
    assert not checks[0].ok and "couldn't communicate with the NVIDIA driver" in checks[0].seen
