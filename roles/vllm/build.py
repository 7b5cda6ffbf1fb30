"""The ``source`` strategy: vLLM built once per fleet, installed everywhere from the wheelhouse.

A build is named by its key: the things that make two builds differ
(CPU arch, OS release, the commit, the torch it was built against, the
target device, the package spec). For every key the run needs, ONE
builder host is elected (the first host of the run, in inventory order,
that needs that key); it clones ``vllm_git_url`` at ``vllm_git_commit``,
installs the build requirements with torch from the profile's index, builds
the wheel (``VLLM_TARGET_DEVICE=cpu`` on CPU hosts, plus ``vllm_build_env``)
and publishes it to the fleet's wheelhouse on the control machine::

    <vllm_wheelhouse>/builds/<key>/<the wheel>

Every host of that key (the builder too) then installs that wheel, under the
torch constraints of its venv. A wheel already in the wheelhouse is never
rebuilt: no host is elected for its key. pyinfra runs one operation on all
hosts before the next, so the builder's publish step has finished before any
host's install step starts.

The key, the election and the compiler check are pure functions below; the
rest are the operations and the two execution-time steps (publish,
install) that need the wheel's file name, which exists only after the build.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shlex
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version
from pyinfra.api.command import StringCommand
from pyinfra.operations import files, pip, python, server

from armada.facts.host import HostSnapshot
from armada.facts.torch import VenvDistributions
from armada.masking import mask_url
from armada.profile import Profile
from armada.role_support import run_quiet
from armada.serving import needs_install, venv_path

DEFAULT_WHEELHOUSE = "~/.cache/armada/wheelhouse"


class BuildError(RuntimeError):
    pass


# ------------------------------------------------------------------ pure


# aarch64 features vLLM's CPU build compiles for when the builder has them
# (its cmake reads /proc/cpuinfo: asimddp/asimdhp -> dotprod/fp16, bf16 ->
# +bf16, i8mm, SVE kernels): a wheel built on a bf16 host uses bf16
# instructions, so the features are part of an aarch64 build's name.
BUILD_ISA_AARCH64 = ("asimddp", "asimdhp", "bf16", "i8mm", "sve", "sve2")


def build_isa(profile: Profile, arch: str) -> str | None:
    """The CPU features an aarch64 build is compiled for, as a key part
    (``bf16.i8mm.sve``...); None on x86_64, whose keys stay as they were."""
    if arch != "aarch64":
        return None
    present = [name for name in BUILD_ISA_AARCH64 if name in profile.cpu_features]
    return ".".join(present) or "baseline"


def build_key(profile: Profile, arch: str, os_release: str, data: Mapping[str, Any]) -> str:
    """The name of one build: builds with the same key are interchangeable.

    The OS release is part of it: a wheel links against the builder's glibc
    and libstdc++, and its Python tag follows the distro's python3. On
    aarch64 the CPU features the build compiles for are too: a wheel built
    on a bf16 host (Graviton3) dies with an illegal instruction on a
    Neoverse-N1 (Graviton2, Altra), so they never share a key.
    """
    commit = re.sub(r"[^A-Za-z0-9._-]", "_", profile.vllm_git_commit or "")
    recipe = "|".join([profile.vllm_git_url or "", profile.vllm_spec or "", data["vllm_build_requirements"],
                       repr(sorted(data["vllm_build_env"].items()))])
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:8]
    torch = profile.torch_spec.split("==", 1)[-1]
    isa = build_isa(profile, arch)
    if isa:
        arch = f"{arch}-{isa}"
    return f"{arch}-{os_release}-{commit}-torch{torch}-{profile.vllm_target_device}-{digest}"


def elect_builders(needs: Iterable[tuple[str, str]], built: Iterable[str]) -> dict[str, str]:
    """``(host, key)`` pairs in inventory order -> ``{key: builder host}``.

    The first host needing a key builds it; keys already ``built`` (a wheel
    in the wheelhouse) get no builder at all.
    """
    done = set(built)
    builders: dict[str, str] = {}
    for host, key in needs:
        if key not in done:
            builders.setdefault(key, host)
    return builders


def compiler_problem(gxx_version: str | None, minimum: str, host: str) -> str | None:
    """Why this builder's g++ cannot build vLLM's CPU backend; None when it can."""
    if not gxx_version:
        return f"{host}: no g++ on the builder (build-essential)"
    if Version(gxx_version) < Version(minimum):
        return (
            f"{host}: g++ {gxx_version} is older than {minimum}, the least vLLM's CPU build accepts "
            f"(vllm_build_min_gcc); Debian 12 ships 12.2 and crashes on vLLM's kernels: build on a host "
            f"with a newer compiler (Debian 13, Ubuntu 24.04) or lower vllm_build_min_gcc for a package that allows it"
        )
    return None


def build_jobs(cores: int, mem_total_bytes: int | None, wanted: int | None) -> int:
    """Parallel compile jobs: vLLM's CPU kernels take up to ~2 GB per g++
    (3.9 GB max RSS seen with MAX_JOBS=2, LAB.md)."""
    if wanted:
        return wanted
    by_memory = (mem_total_bytes or 0) // (2 * 1024**3)
    return max(1, min(cores, by_memory))


def wheel_for(directory: str, spec: str) -> str | None:
    """The one wheel in ``directory`` that satisfies ``spec``, or None."""
    requirement = Requirement(spec)
    found = []
    for path in sorted(glob.glob(os.path.join(directory, "*.whl"))):
        name, version, _, _ = parse_wheel_filename(os.path.basename(path))
        if canonicalize_name(name) == canonicalize_name(requirement.name) and requirement.specifier.contains(
            version, prereleases=True
        ):
            found.append(path)
    if len(found) > 1:
        raise BuildError(f"{directory}: more than one wheel satisfies {spec}: {[os.path.basename(p) for p in found]}")
    return found[0] if found else None


def wheelhouse_dir(data: Mapping[str, Any]) -> str:
    return os.path.abspath(os.path.expanduser(data["vllm_wheelhouse"] or DEFAULT_WHEELHOUSE))


def key_dir(data: Mapping[str, Any], key: str) -> str:
    return os.path.join(wheelhouse_dir(data), "builds", key)


# ------------------------------------------------ the fleet, at plan time


_plans: dict[int, dict[str, str]] = {}


def fleet_builders(run) -> dict[str, str]:
    """``{key: builder}`` for this run (computed once per run, from every host's
    facts; ``run``: the armada.role.RoleRun of the host asking)."""
    state = run.host.state
    if id(state) in _plans:
        return _plans[id(state)]
    needs, built = [], []
    for other in run.inventory:
        if other not in state.active_hosts or not state.is_host_in_limit(other):
            continue
        data = run.data_of(other)
        if "vllm" not in data["armada_roles"]:
            continue
        profile = run.profile_of(other)
        if profile.vllm_strategy != "source":
            continue
        key = host_build_key(other, profile, data)
        if wheel_for(key_dir(data, key), profile.vllm_spec):
            built.append(key)
        installed = other.get_fact(VenvDistributions, venv=venv_path(profile, data)) or {}
        if needs_install(profile.vllm_spec, installed):
            needs.append((other.name, key))
    _plans[id(state)] = elect_builders(needs, built)
    return _plans[id(state)]


def host_build_key(host, profile: Profile, data: Mapping[str, Any]) -> str:
    facts = host.get_fact(HostSnapshot)
    release = f"{facts.os.id}{facts.os.version_id}" if facts.os else "unknown"
    return build_key(profile, facts.arch or "unknown", release, data)


# ------------------------------------------------------- the operations


def build_operations(host, profile: Profile, data: Mapping[str, Any], key: str, torch_args: list[str],
                     requirement_args: list[str]) -> None:
    """On the elected builder: clone, build requirements, build, publish.

    ``torch_args``: where torch comes from (the profile's index); the build
    requirements (cmake, ninja, setuptools-scm ...) come from the usual
    index with ``requirement_args``, torch held by the constraints pin."""
    facts = host.get_fact(HostSnapshot)
    work = f"{data['armada_root']}/build/{key}"
    src, venv, dist = f"{work}/src", f"{work}/venv", f"{work}/dist"
    python_bin = f"{venv}/bin/python"

    files.directory(name="build dir", path=work, mode="755")
    python.call(name="builder's compiler", function=check_compiler, host=host, minimum=data["vllm_build_min_gcc"])
    # pyinfra's git.repo clones with --branch, which takes no commit ids: fetch the exact ref
    server.shell(
        name=f"source {profile.vllm_git_commit} of {mask_url(profile.vllm_git_url)}",
        commands=[
            f"git init -q {src}",
            f"git -C {src} remote remove origin 2>/dev/null; git -C {src} remote add origin {shlex.quote(profile.vllm_git_url)}",
            f"git -C {src} fetch -q --depth 1 origin {shlex.quote(profile.vllm_git_commit)}",
            f"git -C {src} checkout -q --force FETCH_HEAD",
            f"git -C {src} clean -qfdx",
        ],
    )
    pip.venv(name="build venv", path=venv, python="python3")
    pin = f"{work}/torch-constraints.txt"
    requirements = f"{src}/{data['vllm_build_requirements']}"
    server.shell(
        name=f"build requirements, torch {profile.torch_spec} from {mask_url(profile.torch_index_url or 'PyPI')}",
        commands=[
            StringCommand(python_bin, "-m pip install", *torch_args, shlex.quote(profile.torch_spec)),
            f"{python_bin} -c 'import torch; print(\"torch==\" + torch.__version__)' > {pin}",
            # the build requirements, never replacing the torch just installed
            f"test -f {shlex.quote(requirements)} || {{ echo "
            + shlex.quote(f"vllm_build_requirements: {data['vllm_build_requirements']} is not in "
                          f"{mask_url(profile.vllm_git_url)} at {profile.vllm_git_commit}") + " >&2; exit 1; }",
            f"sed -E '/^torch([=<>~! ]|$)/d' {shlex.quote(requirements)} > {work}/build-requirements.txt",
            StringCommand(python_bin, "-m pip install", f"--constraint={pin}", *requirement_args,
                          f"-r {work}/build-requirements.txt"),
        ],
    )
    env = {"VLLM_TARGET_DEVICE": profile.vllm_target_device,
           "MAX_JOBS": str(build_jobs((facts.cpu.physical_cores or facts.cpu.logical_cpus) if facts.cpu else 1,
                                      facts.memory.total_bytes if facts.memory else None, data["vllm_build_jobs"])),
           **data["vllm_build_env"]}
    server.shell(
        name=mask_url(f"build the wheel ({' '.join(f'{k}={v}' for k, v in sorted(env.items()))})"),
        commands=[
            f"rm -rf {dist}",
            f"cd {src} && {python_bin} -m pip wheel --no-build-isolation --no-deps --wheel-dir={dist} .",
        ],
        _env=env,
    )
    python.call(name="publish the wheel to the fleet wheelhouse", function=publish_wheel, host=host,
                remote_dist=dist, local_dir=key_dir(data, key), spec=profile.vllm_spec)


def check_compiler(host, minimum: str) -> str:
    ok, text = run_quiet(host, "g++ -dumpfullversion")
    problem = compiler_problem(text.strip() if ok else None, minimum, host.name)
    if problem:
        raise BuildError(problem)
    return f"g++ {text.strip()}"


def publish_wheel(host, remote_dist: str, local_dir: str, spec: str) -> str:
    """Copy the builder's wheel into the wheelhouse (atomically: no half wheel is ever seen)."""
    ok, listing = run_quiet(host, f"ls -1 {remote_dist}/*.whl")
    wheels = [line.strip() for line in listing.splitlines() if line.strip().endswith(".whl")] if ok else []
    if len(wheels) != 1:
        raise BuildError(f"{host.name}: the build left {len(wheels)} wheel(s) in {remote_dist}, expected one")
    os.makedirs(local_dir, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=local_dir, suffix=".part")
    os.close(fd)
    if not host.get_file(wheels[0], partial):
        raise BuildError(f"{host.name}: could not copy {wheels[0]} back to {local_dir}")
    final = os.path.join(local_dir, os.path.basename(wheels[0]))
    os.replace(partial, final)
    if not wheel_for(local_dir, spec):
        raise BuildError(f"{host.name}: the wheel built ({os.path.basename(final)}) does not satisfy {spec}")
    return f"published {final}"


def install_from_wheelhouse(host, key: str, spec: str, local_dir: str, builder: str | None, remote_dir: str,
                            install_command: str) -> str:
    """Put the key's wheel on this host and install it (``{wheel_dir}`` in the command)."""
    wheel = wheel_for(local_dir, spec)
    if not wheel:
        who = f"its builder {builder} did not publish one" if builder else "and no host of this run builds it"
        raise BuildError(f"{host.name}: no wheel for build {key} in {local_dir}: {who}")
    ok, text = run_quiet(host, f"mkdir -p {remote_dir}")
    if not ok or not host.put_file(wheel, f"{remote_dir}/{os.path.basename(wheel)}"):
        raise BuildError(f"{host.name}: could not copy {os.path.basename(wheel)} to {remote_dir}: {text}")
    ok, text = run_quiet(host, install_command.format(wheel_dir=remote_dir))
    if not ok:
        raise BuildError(f"{host.name}: installing {os.path.basename(wheel)} failed:\n{text[-3000:]}")
    return f"installed {os.path.basename(wheel)} from the fleet wheelhouse"
