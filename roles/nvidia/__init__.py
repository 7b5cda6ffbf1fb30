"""The nvidia role: NVIDIA's CUDA apt repository, the pinned open-module
driver, nvidia-persistenced, and where the host needs them
nvidia-fabricmanager (NVSwitch boards) and nvidia-imex (multi-node NVLink).

Runs only on hosts whose facts show NVIDIA GPUs (from PCI: no driver needed
to know). What it installs is one pure decision, :func:`nvidia_plan`,
tested on real GH200, GB200 and H100 snapshots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FunctionCommand, deploy, operation
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from armada.errors import DataError
from armada.facts.system import OsRelease
from armada.health import Check
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


class RebootGateClosed(RuntimeError):
    pass


class RebootGate:
    """A run's driver reboots, host after host: each host's GPUs come back healthy before the next
    host reboots; the first that does not closes the gate, naming itself, and no further host
    reboots (one gate per pyinfra run: :func:`reboot_gate`)."""

    def __init__(self):
        self.closed_by: str | None = None

    def before(self, host_name: str) -> bool:
        if self.closed_by:
            raise RebootGateClosed(f"{host_name}: not rebooted for its new driver: {self.closed_by} did not come "
                                   "back healthy from its own reboot; fix that host and run again")
        return True

    def after(self, host_name: str, checks: list[Check]) -> bool:
        failed = [c for c in checks if not c.ok]
        if failed:
            self.closed_by = f"{host_name} ({'; '.join(f'{c.check}: {c.seen}' for c in failed)})"
            raise RebootGateClosed(f"{host_name}: its GPUs are not healthy after the reboot for the new driver: "
                                   f"{self.closed_by}; no further host reboots")
        return True


def reboot_gate(state) -> RebootGate:
    """The gate of this pyinfra run (kept on its State)."""
    gate = getattr(state, "armada_reboot_gate", None)
    if gate is None:
        gate = RebootGate()
        state.armada_reboot_gate = gate
    return gate


@operation(is_idempotent=False)
def gated_reboot(profile: Profile, data: dict, healthy_within: int = 300, reboot_timeout: int = 600):
    """
    Reboot for a new kernel module and wait until the host's GPUs are healthy again (nvidia-smi
    sees every GPU, the driver branch, persistence on), failing the host when they are not
    within ``healthy_within`` seconds. Run with ``_serial=True``: hosts then reboot one at a
    time, and once one fails no later host reboots (:class:`RebootGate`).

    **Example:**

    .. code:: python

        gated_reboot(name="reboot for the new driver", profile=run.profile, data=run.data,
                     _serial=True, _if=any_changed(driver))
    """
    yield FunctionCommand(lambda state, host: reboot_gate(state).before(host.name), (), {})
    yield from server.reboot._inner(delay=10, interval=2, reboot_timeout=reboot_timeout)

    def gpus_healthy(state, host):
        deadline = time.monotonic() + healthy_within
        while True:
            checks = health.device_checks(host, profile, data)
            if all(c.ok for c in checks) or time.monotonic() > deadline:
                return reboot_gate(state).after(host.name, checks)
            time.sleep(5)  # nvidia-persistenced may still be starting

    yield FunctionCommand(gpus_healthy, (), {})


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
    if run.build_only:
        # an upgrade's first phase runs on every host at once: a driver change (and its reboot)
        # waits for the host's own batch, where the health checks gate it
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    if plan.pin_packages:
        apt.packages(name="driver branch pin", packages=list(plan.pin_packages), update=added is not None, _env=env)
    driver = apt.packages(name="NVIDIA driver (open kernel modules)", packages=list(plan.driver_packages),
                          update=added is not None and not plan.pin_packages, _env=env)
    if plan.extra_packages:
        apt.packages(name="NVIDIA fabric manager / imex / toolkit", packages=list(plan.extra_packages), _env=env)
    if data["nvidia_reboot"]:
        # one host at a time, only where the kernel module packages changed, each one's GPUs
        # healthy again before the next reboots
        gated_reboot(name="reboot for the new NVIDIA kernel module, GPUs healthy before the next host",
                     profile=run.profile, data=data, _if=any_changed(driver), _serial=True)
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
