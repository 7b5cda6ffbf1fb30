"""The nvidia role's health checks: nvidia-smi sees the expected GPUs, the
driver branch, persistence mode, and vLLM running on the GPUs."""

from __future__ import annotations

import shlex

from armada.commands.snapshot import NVIDIA_SMI_QUERY
from armada.health import Check
from armada.parsers import ParseError
from armada.parsers.gpu import parse_nvidia_smi_csv
from armada.profile import Profile
from armada.role_support import run_quiet


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun. GPU hosts only."""
    if run.profile.accelerator != "cuda":
        return []
    return gpu_checks(run.host, run.profile, run.data)


def evaluate_gpus(host_name: str, gpus, profile: Profile, branch: str) -> list[Check]:
    """What nvidia-smi reports against what the host should have (pure)."""
    seen = ", ".join(f"{g.index}:{g.name}" for g in gpus) or "nvidia-smi answered nothing"
    checks = [Check(host_name, "nvidia-smi sees the GPUs", len(gpus) == profile.gpu_count and bool(gpus),
                    f"{len(gpus)} of {profile.gpu_count}: {seen}")]
    versions = sorted({g.driver_version for g in gpus if g.driver_version})
    ok = bool(versions) and all(int(v.split(".")[0]) >= int(branch) for v in versions)
    checks.append(Check(host_name, f"driver >= branch {branch}", ok, ", ".join(versions) or "unknown"))
    modes = [g.persistence_mode for g in gpus]
    checks.append(Check(host_name, "persistence mode on", bool(modes) and all(modes),
                        ", ".join("on" if m else "off" for m in modes) or "unknown"))
    return checks


def device_checks(host, profile: Profile, data: dict) -> list[Check]:
    """nvidia-smi answers with the expected GPUs, driver and persistence (read on the host now)."""
    ok, text = run_quiet(host, f"nvidia-smi --query-gpu={NVIDIA_SMI_QUERY} --format=csv")
    return checks_of_answer(host.name, ok, text, profile, data["nvidia_driver_branch"])


def checks_of_answer(host_name: str, ok: bool, text: str, profile: Profile, branch: str) -> list[Check]:
    """The device checks from nvidia-smi's CSV answer (pure); when it answered no GPU, what it said instead."""
    try:
        gpus = parse_nvidia_smi_csv(text) if ok else ()
    except ParseError:
        gpus = ()
    checks = evaluate_gpus(host_name, gpus, profile, branch)
    if not gpus and text.strip():
        checks[0] = Check(host_name, checks[0].check, False, f"{checks[0].seen} ({text.strip().splitlines()[0]})")
    return checks


def gpu_checks(host, profile: Profile, data: dict) -> list[Check]:
    """The device checks, and vLLM running on the GPUs."""
    checks = device_checks(host, profile, data)
    if "vllm_service" in data["armada_roles"]:
        script = (
            "for p in $(nvidia-smi --query-compute-apps=pid --format=csv,noheader); do "
            "grep -q armada-vllm.service /proc/$p/cgroup 2>/dev/null && echo \"$p $(cat /proc/$p/comm)\"; done"
        )
        _, seen = run_quiet(host, f"bash -c {shlex.quote(script)}")
        checks.append(Check(host.name, "vLLM runs on the GPUs", bool(seen.strip()), seen.replace("\n", "; ") or "no vLLM process on any GPU"))
    return checks
