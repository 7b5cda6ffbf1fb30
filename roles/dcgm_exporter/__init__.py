"""The dcgm_exporter role: NVIDIA's DCGM exporter on GPU hosts (from NVIDIA's CUDA repository, which the
nvidia role sets up), under armada's own unit, scraped by the monitoring role.

Loopback by default; bound beyond it, it asks for the host's scrape password (metrics_password_file, the
node exporter's: a bcrypt hash in its runtime folder, through exporter-toolkit's web config). It also
writes the number of GPUs armada found on PCI into the node exporter's textfile folder
(``armada_gpus_expected``), which the GPU-missing alert compares with the GPUs DCGM reports.
What it installs is one pure decision, :func:`dcgm_plan`, tested on real GPU snapshots.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import apt, files

from armada.errors import DataError
from armada.hardening import unit_hardening
from armada.paths import shared
from armada.profile import Profile
from armada.role import Role, RoleRun
from armada.role_support import endpoint, managed_service, mask_distro_unit, open_endpoint, template_path
from roles import node_exporter
from roles.dcgm_exporter import health
from roles.dcgm_exporter.defaults import KEYS

UNIT = "armada-dcgm-exporter"
BINARY = "/usr/bin/dcgm-exporter"  # where NVIDIA's datacenter-gpu-manager-exporter package puts it
EXPECTED_FILE = node_exporter.GPU_COUNT_FILE


@dataclass(frozen=True)
class DcgmPlan:
    packages: tuple[str, ...]
    gpus: int
    reasons: tuple[str, ...]


def dcgm_plan(profile: Profile, data) -> DcgmPlan:
    """The DCGM packages of a GPU host and the GPU count its alert expects (pure)."""
    branch = int(data["nvidia_driver_branch"])
    cuda = data["dcgm_cuda"] if data["dcgm_cuda"] != "auto" else ("13" if branch >= 580 else "12")
    why = "data asks" if data["dcgm_cuda"] != "auto" else f"driver branch {branch} " + (
        "runs CUDA 13" if cuda == "13" else "predates CUDA 13")
    return DcgmPlan(
        packages=(f"datacenter-gpu-manager-4-cuda{cuda}", "datacenter-gpu-manager-exporter"),
        gpus=profile.gpu_count,
        reasons=(f"DCGM 4 for CUDA {cuda}: {why}",
                 f"{profile.gpu_count} GPU(s) on PCI: the count the GPU-missing alert expects"),
    )


def counters_path(data) -> str:
    return data["dcgm_exporter_collectors"] or f"{data['armada_config_dir']}/dcgm-exporter/counters.csv"


def exporter_args(data) -> str:
    return shlex.join([f"--address={endpoint(data['dcgm_exporter_listen'], data['dcgm_exporter_port'])}",
                       f"--collectors={counters_path(data)}"])


def expected_gpus_text(gpus: int) -> str:
    """The node exporter textfile of the GPU count armada found (pure)."""
    return ("# HELP armada_gpus_expected NVIDIA GPUs armada found on PCI at its last deploy\n"
            "# TYPE armada_gpus_expected gauge\n"
            f"armada_gpus_expected {gpus}\n")


@deploy("armada dcgm exporter")
def apply(run: RoleRun):
    data = run.data
    plan = dcgm_plan(run.profile, data)
    tpl = template_path(__file__)
    password = data["metrics_password_file"]
    mask_distro_unit("nvidia-dcgm-exporter.service")
    apt.packages(name="DCGM and its exporter (NVIDIA's repository)",
                 packages=[*plan.packages, *(["python3"] if password else [])],
                 _env={"DEBIAN_FRONTEND": "noninteractive"})
    written = []
    if not data["dcgm_exporter_collectors"]:
        files.directory(name="DCGM exporter config dir", path=f"{data['armada_config_dir']}/dcgm-exporter", mode="755")
        written.append(files.put(name="DCGM exporter counters", src=shared("files/dcgm-counters.csv"),
                                 dest=counters_path(data), mode="644"))
    launcher = None
    if password:
        launcher = f"{data['armada_root']}/bin/{UNIT}-start"
        written.append(files.template(
            name="DCGM exporter launcher (hashes the scrape password)",
            src=template_path(node_exporter.__file__)("armada-node-exporter-start.j2"),  # one launcher for both
            dest=launcher, mode="755", binary=BINARY, args=exporter_args(data),
            user_arg=shlex.quote(data["metrics_user"]), password_arg=shlex.quote(password)))
    unit = files.template(name="DCGM exporter unit", src=tpl(f"{UNIT}.service.j2"),
                          dest=f"/etc/systemd/system/{UNIT}.service", mode="644", unit=UNIT, launcher=launcher,
                          binary=BINARY, args=exporter_args(data),
                          hardening=dcgm_hardening())
    managed_service(UNIT, unit, written, watched=[path for path in (launcher, counters_path(data)) if path])
    files.put(name="GPUs expected (node exporter textfile)", src=StringIO(expected_gpus_text(plan.gpus)),
              dest=f"{data['node_exporter_textfile_dir']}/{EXPECTED_FILE}", mode="644")


def dcgm_hardening() -> str:
    """armada's sandbox, with the GPUs' device nodes, and root's files readable (the embedded host engine
    runs as root, as in NVIDIA's own unit): nothing of it is writable but its runtime folder."""
    return unit_hardening(gpu=True, full_proc=True, host_view=True, netlink=True, jit=True)


def checks(name: str, data):
    roles = data["armada_roles"]
    if "dcgm_exporter" not in roles:
        return
    for needed, why in (("nvidia", "it installs from NVIDIA's CUDA repository, which the nvidia role sets up"),
                        ("node_exporter", "the node exporter carries the GPU count armada found, which the "
                         "GPU-missing alert compares with what DCGM sees")):
        if needed not in roles:
            yield DataError(name, "armada_roles", roles, f"dcgm_exporter needs {needed} on the same host: {why}")
    yield from open_endpoint(name, data, "dcgm_exporter_listen", ("metrics_password_file",), "the DCGM exporter",
                             "any host on the network could read this host's GPUs, their processes and errors")


def preflight(run: RoleRun):
    """A host without NVIDIA GPUs on PCI is refused before any change (its target would never answer)."""
    if run.profile.gpu_count == 0:
        yield DataError(run.host.name, "armada_roles", "dcgm_exporter", "no NVIDIA GPU on this host's PCI bus: name "
                        "dcgm_exporter on GPU hosts only")


ROLE = Role(
    name="dcgm_exporter",
    doc="NVIDIA's DCGM exporter on GPU hosts (NVIDIA's repository) under armada's unit, loopback or password-guarded",
    keys=KEYS,
    checks=checks,
    preflight=preflight,
    apply=apply,
    health=health.checks,
    by_default=False,
    binds=("dcgm_exporter_port",),
)
