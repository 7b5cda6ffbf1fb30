"""The nvidia role: NVIDIA's CUDA apt repository, the pinned open-module
driver, nvidia-persistenced, and where the host needs them
nvidia-fabricmanager (NVSwitch boards) and nvidia-imex (multi-node NVLink).

Runs only on hosts whose facts show NVIDIA GPUs (from PCI: no driver needed
to know). What it installs is one pure decision, :func:`nvidia_plan`,
tested on real GH200, GB200 and H100 snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from armada.errors import DataError
from armada.facts.system import OsRelease
from armada.profile import Profile
from armada.role import Role, RoleRun
from roles.nvidia import health
from roles.nvidia.defaults import KEYS

NVIDIA_REPOS = "https://developer.download.nvidia.com/compute/cuda/repos"
KEYRING_DEB = "cuda-keyring_1.1-1_all.deb"
REPO_DISTROS = {("ubuntu", "22.04"): "ubuntu2204", ("ubuntu", "24.04"): "ubuntu2404", ("debian", "12"): "debian12"}
REPO_ARCHES = {"x86_64": "x86_64", "aarch64": "sbsa"}  # NVIDIA calls ARM servers "sbsa"


class NvidiaPlanError(ValueError):
    pass


@dataclass(frozen=True)
class NvidiaPlan:
    repo_url: str
    keyring_url: str
    pin_packages: tuple[str, ...]  # installed first: they decide which driver branch apt may pick
    driver_packages: tuple[str, ...]
    extra_packages: tuple[str, ...]  # fabric manager, imex, toolkit
    services: tuple[str, ...]
    reasons: tuple[str, ...]


def nvidia_plan(profile: Profile, data: dict, os_id: str, os_version: str | None) -> NvidiaPlan | None:
    """What the nvidia role installs on a host (pure); None without NVIDIA GPUs."""
    if profile.gpu_count == 0:
        return None
    distro = REPO_DISTROS.get((os_id, os_version or ""))
    if distro is None:
        supported = ", ".join(f"{i} {v}" for i, v in REPO_DISTROS)
        raise NvidiaPlanError(f"{profile.host}: no NVIDIA CUDA repository for {os_id} {os_version} (armada knows {supported})")
    arch = REPO_ARCHES[profile.arch]
    base = (data["nvidia_repo_mirror"] or NVIDIA_REPOS).rstrip("/")
    repo = f"{base}/{distro}/{arch}/"
    branch = int(data["nvidia_driver_branch"])
    reasons = [f"{distro}/{arch}: NVIDIA's CUDA repository for this OS and architecture"]

    if os_id == "ubuntu" and branch <= 580:
        pins, driver = (), (f"nvidia-open-{branch}",)
        reasons.append(f"branch {branch} on Ubuntu: the branch-named open-module meta package pins it")
    else:
        pins, driver = (f"nvidia-driver-pinning-{branch}",), ("nvidia-open",)
        reasons.append(f"branch {branch}: the pinning package first, then the open-module driver it admits")
    suffix = "" if branch >= 580 else f"-{branch}"  # NVIDIA dropped branch names from these at 580
    extra, services = [], ["nvidia-persistenced"]
    fabric = data["nvidia_fabricmanager"]
    if fabric == "yes" or (fabric == "auto" and profile.nvswitch_count):
        extra.append(f"nvidia-fabricmanager{suffix}")
        services.append("nvidia-fabricmanager")
        reasons.append(f"fabric manager: {profile.nvswitch_count} NVSwitch(es) on PCI" if fabric == "auto" else "fabric manager: data asks")
    if data["nvidia_imex"]:
        extra.append(f"nvidia-imex{suffix}")
        services.append("nvidia-imex")
        reasons.append("nvidia-imex: data puts the host in a multi-node NVLink domain")
    if data["nvidia_cuda_toolkit"]:
        extra.append(f"cuda-toolkit-{data['nvidia_cuda_toolkit']}")
        reasons.append("CUDA toolkit: data asks")
    return NvidiaPlan(
        repo_url=repo,
        keyring_url=f"{repo}{KEYRING_DEB}",
        pin_packages=pins,
        driver_packages=driver,
        extra_packages=tuple(extra),
        services=tuple(services),
        reasons=tuple(reasons),
    )


def host_plan(run: RoleRun) -> NvidiaPlan | None:
    os_info = run.host.get_fact(OsRelease)
    return nvidia_plan(run.profile, run.data, os_info.id, os_info.version_id)


def preflight(run: RoleRun):
    """A GPU host on an OS NVIDIA's CUDA repository does not serve is refused before any change."""
    try:
        host_plan(run)
    except NvidiaPlanError as exc:
        yield DataError(run.host.name, "armada_roles", "nvidia", str(exc))


def urls(data, profile) -> list[tuple[str, str]]:
    if profile.accelerator == "cuda" and data["nvidia_repo_mirror"]:
        return [("nvidia_repo_mirror", data["nvidia_repo_mirror"])]
    return []


@deploy("armada nvidia")
def apply(run: RoleRun):
    data = run.data
    plan = host_plan(run)
    if plan is None:
        return  # nothing NVIDIA on PCI: nothing to do

    keyring = "/usr/share/keyrings/cuda-archive-keyring.gpg"
    added = None
    if not host.get_fact(File, path=keyring):
        deb = files.download(name="cuda-keyring package", src=plan.keyring_url, dest=f"/tmp/{KEYRING_DEB}")
        added = apt.deb(name="NVIDIA CUDA repository (cuda-keyring)", src=f"/tmp/{KEYRING_DEB}", _if=any_changed(deb))
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    if plan.pin_packages:
        apt.packages(name="driver branch pin", packages=list(plan.pin_packages), update=added is not None, _env=env)
    driver = apt.packages(name="NVIDIA driver (open kernel modules)", packages=list(plan.driver_packages),
                          update=added is not None and not plan.pin_packages, _env=env)
    if plan.extra_packages:
        apt.packages(name="NVIDIA fabric manager / imex / toolkit", packages=list(plan.extra_packages), _env=env)
    if data["nvidia_reboot"]:
        # one host at a time, only where the kernel module packages changed
        server.reboot(name="reboot for the new NVIDIA kernel module", _if=any_changed(driver), _serial=True)
    for service in plan.services:
        systemd.service(name=f"{service} running", service=f"{service}.service", running=True, enabled=True)


ROLE = Role(
    name="nvidia",
    doc="NVIDIA's CUDA repository, the pinned open-module driver, persistenced, fabric manager and imex where needed",
    keys=KEYS,
    preflight=preflight,
    urls=urls,
    apply=apply,
    health=health.checks,
)
