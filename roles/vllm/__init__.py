"""The vLLM role: torch and vLLM in a versioned venv, torch pinned and guarded.

Each install lives in its own venv, ``<armada_root>/vllm/<version>-<hash>``
(the hash covers everything that makes two installs differ), and ``current``
points at the one the service runs. Torch comes first, from the profile's
index; a constraints file then pins the exact torch installed, so that no
later install can swap it; after every install the torch guard checks that
the venv holds the build the profile chose (a CUDA build with the expected
GPUs on GPU hosts; a CPU build and no nvidia-* wheels on CPU hosts).

Its data keys are in :mod:`roles.vllm.defaults`; the decisions it acts on
are in :mod:`armada.profile`.
"""

from __future__ import annotations

import os
import re
import shlex
from io import StringIO

from packaging.requirements import Requirement
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.command import QuoteString, StringCommand
from pyinfra.api.hiddenvalue import HiddenValue
from pyinfra.facts.files import File
from pyinfra.operations import files, pip, python, server

from armada.commands.torch import VENV_PROBE
from armada.commands.vllm import smoke_command
from armada.errors import DataError
from armada.facts.torch import VenvDistributions, VenvTorch
from armada.masking import mask_url
from armada.parsers.torch import parse_venv_probe
from armada.parsers.vllm import smoke_result
from armada.paths import shared
from armada.profile import Profile
from armada.role import Role, RoleRun
from armada.role_support import run_quiet
from armada.serving import current_link, dynamo_extras, dynamo_spec, needs_install, torch_problem, venv_path
from roles.vllm import build
from roles.vllm.defaults import KEYS

INSTALLER = "armada-pip-install.py"
# written into an install when its smoke test passed (what it ran and measured); absent: not passed
SMOKE_RECORD = "armada-smoke-passed"


class TorchGuardError(RuntimeError):
    pass


class SmokeTestError(RuntimeError):
    pass


def enforce_torch_guard(host, venv: str, profile: Profile) -> str:
    """Read the venv's torch and packages on the host (read-only) and fail,
    naming what is installed and from where, unless it is the profile's build.

    Runs at execution time, right after an install (through python.call).
    """
    _, probe = run_quiet(host, f"{shlex.quote(venv + '/bin/python')} -c {shlex.quote(VENV_PROBE)}", with_stderr=False)
    build, distributions = parse_venv_probe(probe)
    problem = torch_problem(build, profile, distributions)
    source = profile.torch_index_url or "PyPI"
    if problem:
        where = f" at {build.path}" if build and build.path else ""
        raise TorchGuardError(f"{host.name}: torch guard: {problem} (torch from {source}{where}, venv {venv})")
    return f"torch guard: ok, torch {build.version} cuda={build.cuda} gpus={build.device_count}"


def smoke_test(host, venv: str, profile: Profile, current: str) -> str:
    """Run one op of the install's compiled vLLM kernels on the host, before it may serve; fail,
    naming what went wrong and what keeps serving, when it crashes (an illegal instruction above
    all), raises or computes a wrong result. Runs at execution time (through python.call): a host
    whose new install fails stops here, before the flip, and keeps serving its current install."""
    record = f"{venv}/{SMOKE_RECORD}"
    _, output = run_quiet(host, smoke_command(f"{venv}/bin/python", profile.dtype))
    result = smoke_result(output)
    if not result.ok:
        run_quiet(host, f"rm -f {shlex.quote(record)}")
        _, serving = run_quiet(host, f"readlink {shlex.quote(current)}", with_stderr=False)
        keeps = f"{serving} keeps serving" if serving else "nothing was serving"
        way_out = ""
        if result.illegal_instruction:
            way_out = ("; build vLLM on a host of this CPU kind: vllm_strategy: source" if profile.vllm_strategy != "source"
                       else "; the build's key names the CPU features it was built for: remove that wheel from the "
                       "wheelhouse's builds/ and build again")
        raise SmokeTestError(f"{host.name}: smoke test of {venv} failed: {result.detail}; "
                             f"not switched to it, {keeps}{way_out}")
    written, why = run_quiet(host, f"printf '%s\\n' {shlex.quote(result.detail)} > {shlex.quote(record)}")
    if not written:
        raise SmokeTestError(f"{host.name}: smoke test of {venv} passed but its record was not written: {why}")
    return f"smoke test: ok, {result.detail}"


def _pip_source_args(profile: Profile, find_links: str | None, for_torch: bool) -> list[QuoteString]:
    """pip's source options, each one shell-quoted argument of a StringCommand; an index URL's
    password is printed masked (pyinfra prints commands) and sent as it is."""
    args = []
    if for_torch and profile.torch_index_url:
        args.append(url_arg("--index-url=", profile.torch_index_url))
    if find_links:
        args.append(url_arg("--find-links=", find_links))
    return args


def url_arg(option: str, value: str) -> QuoteString:
    """``option`` + ``value`` as one quoted argument, printed with the URL's password masked."""
    return QuoteString(HiddenValue(option + value, masked_value=option + mask_url(value)))


@deploy("armada vllm")
def apply(run: RoleRun):
    data, profile = run.data, run.profile
    root = data["armada_root"]
    venv = venv_path(profile, data)
    python_bin, pip_bin = f"{venv}/bin/python", f"{venv}/bin/pip"
    constraints = f"{venv}/armada-constraints.txt"

    files.directory(name="vllm installs dir", path=f"{root}/vllm", mode="755")
    files.directory(name="armada bin dir", path=f"{root}/bin", mode="755")
    installer = f"{root}/bin/{INSTALLER}"
    files.put(name="pip installer", src=shared(f"files/{INSTALLER}"), dest=installer, mode="755")

    find_links = None
    wheelhouse = data["vllm_wheelhouse"]
    if wheelhouse and "://" not in wheelhouse:
        find_links = f"{root}/wheelhouse"
        # builds/ holds the source strategy's wheels of every key: each host gets only its own
        files.sync(name="wheelhouse", src=wheelhouse, dest=find_links, mode="644", dir_mode="755",
                   exclude_dir=["builds"])
    elif wheelhouse:
        find_links = wheelhouse

    pip.venv(name=f"venv {os.path.basename(venv)}", path=venv, python="python3")

    torch_build = host.get_fact(VenvTorch, venv=venv)
    packages = host.get_fact(VenvDistributions, venv=venv) if torch_build else {}
    if torch_build is None:
        torch_args = _pip_source_args(profile, find_links, for_torch=True)
        server.shell(
            name=f"torch {profile.torch_spec} from {mask_url(profile.torch_index_url or 'PyPI')}",
            commands=[
                StringCommand(pip_bin, "install", *torch_args, shlex.quote(profile.torch_spec)),
                # the pin is the exact build installed (with its +cpu/+cu local label)
                f"{python_bin} -c 'import torch; print(\"torch==\" + torch.__version__)' > {constraints}",
            ],
        )
    else:
        problem = torch_problem(torch_build, profile, packages)
        if problem:
            raise ValueError(f"{host.name}: torch guard: {venv}: {problem}; remove that venv or fix the torch source")
        files.put(name="torch pin", src=StringIO(f"torch=={torch_build.version}\n"), dest=constraints, mode="644")

    exclude = ",".join(data["vllm_exclude_deps"])
    sources = _pip_source_args(profile, find_links, for_torch=False)
    installed = False
    companions = [spec for spec in companion_packages(data) if needs_install(spec, packages)]
    if companions:
        # torchvision built for the venv's torch: from the torch index, under the torch pin
        torch_sources = _pip_source_args(profile, find_links, for_torch=True)
        server.shell(name=f"{', '.join(companions)} from {mask_url(profile.torch_index_url or 'PyPI')}",
                     commands=[StringCommand(python_bin, "-m pip install", f"--constraint={constraints}",
                                             *torch_sources, *(shlex.quote(c) for c in companions))])
        installed = True
    if needs_install(profile.vllm_spec, packages):
        if profile.vllm_strategy == "source":
            _install_built_wheel(run, venv, installer, constraints, find_links, exclude)
        else:
            server.shell(name=f"vLLM {profile.vllm_spec}",
                         commands=[_install_command(python_bin, installer, constraints, sources, exclude,
                                                    profile.vllm_spec)])
        installed = True
    if data["armada_serving"] == "dynamo" and needs_install(dynamo_spec(data), packages):
        server.shell(name=f"Dynamo {dynamo_spec(data)}",
                     commands=[_install_command(python_bin, installer, constraints, sources,
                                                ",".join(data["dynamo_exclude_deps"]), dynamo_spec(data))])
        installed = True
    extra = [spec for spec in [*dynamo_extras(data), *data["vllm_extra_requirements"]] if needs_install(spec, packages)]
    if extra:
        server.shell(name=f"extra requirements {', '.join(extra)}",
                     commands=[StringCommand(python_bin, "-m pip install", f"--constraint={constraints}", *sources,
                                             *(shlex.quote(e) for e in extra))])
        installed = True
    if installed:
        python.call(name="torch guard", function=enforce_torch_guard, host=host, venv=venv, profile=profile)
    if data["vllm_smoke_test"] and (installed or not host.get_fact(File, path=f"{venv}/{SMOKE_RECORD}")):
        python.call(name="smoke test: vLLM's compiled kernels run one op", function=smoke_test, host=host, venv=venv,
                    profile=profile, current=current_link(data))


def companion_packages(data: dict) -> list[str]:
    """Packages built against torch that the serving venv needs beside it (pure):
    Dynamo's vLLM worker imports torchvision, which must come from the torch
    index (PyPI's is built for CUDA torch and fails to import beside a CPU torch)."""
    if data["armada_serving"] == "dynamo" and "torchvision" not in data["vllm_exclude_deps"]:
        return ["torchvision"]
    return []


def _install_command(python_bin: str, installer: str, constraints: str, sources: list, exclude: str,
                     spec: str) -> StringCommand:
    if exclude:
        return StringCommand(python_bin, installer, f"--exclude={shlex.quote(exclude)}", f"--constraint={constraints}",
                             *sources, shlex.quote(spec))
    return StringCommand(python_bin, "-m pip install", f"--constraint={constraints}", *sources, shlex.quote(spec))


def _install_built_wheel(run: RoleRun, venv: str, installer: str, constraints: str, find_links: str | None,
                         exclude: str) -> None:
    """The source strategy: build once per fleet (on the elected builder), install from the wheelhouse."""
    profile, data = run.profile, run.data
    key = build.host_build_key(host, profile, data)
    builders = build.fleet_builders(run)
    builder = builders.get(key)
    if builder == host.name:
        # PyTorch's CPU index holds torch, not cmake or ninja: requirements from the usual index
        requirement_args = _pip_source_args(profile, find_links, for_torch=False)
        if profile.torch_index_url:
            requirement_args.append(url_arg("--extra-index-url=", profile.torch_index_url))
        build.build_operations(host, profile, data, key, _pip_source_args(profile, find_links, for_torch=True),
                               requirement_args)
    remote_dir = f"{data['armada_root']}/wheelhouse/builds/{key}"
    sources = [url_arg("--find-links=", remote_dir), *_pip_source_args(profile, find_links, for_torch=False)]
    python.call(
        name=f"vLLM {profile.vllm_spec} built once per fleet ({builder or 'already in the wheelhouse'})",
        function=build.install_from_wheelhouse, host=host, key=key, spec=profile.vllm_spec,
        local_dir=build.key_dir(data, key), builder=builder, remote_dir=remote_dir,
        install_command=_install_command(f"{venv}/bin/python", installer, constraints, sources, exclude,
                                         profile.vllm_spec).get_raw_value(),
    )


def checks(name: str, data):
    """The strategy has what it needs; a pinned spec agrees with vllm_version."""
    strategy = data["vllm_strategy"]
    if strategy == "wheel" and not data["vllm_wheelhouse"]:
        yield DataError(name, "vllm_wheelhouse", None, "vllm_strategy 'wheel' needs a wheelhouse (folder or URL)")
    if strategy == "source" and re.match(r"^[a-z]+://", data["vllm_wheelhouse"] or ""):
        yield DataError(
            name, "vllm_wheelhouse", data["vllm_wheelhouse"], "vllm_strategy 'source' publishes its builds to a folder "
            "on the control machine; a URL is read-only here (serve that folder over HTTP to other fleets)"
        )
    spec = data["vllm_spec"]
    if spec:
        pinned = [s.version for s in Requirement(spec).specifier if s.operator in ("==", "===")]
        if pinned and pinned[0] != data["vllm_version"]:
            yield DataError(name, "vllm_spec", spec, f"pins {pinned[0]} but vllm_version is {data['vllm_version']!r}; "
                            "set both to the same release")


def urls(data, profile: Profile) -> list[tuple[str, str]]:
    """The torch index (it must serve torch, not only answer) and a wheelhouse URL."""
    found = []
    if profile.torch_index_url:
        found.append(("torch_index_url", profile.torch_index_url.rstrip("/") + "/torch/"))
    if data["vllm_wheelhouse"] and "://" in data["vllm_wheelhouse"]:
        found.append(("vllm_wheelhouse", data["vllm_wheelhouse"]))
    return found


ROLE = Role(
    name="vllm",
    doc="torch and vLLM (and Dynamo when it serves) in a versioned venv, torch pinned and guarded",
    keys=KEYS,
    checks=checks,
    urls=urls,
    apply=apply,
)
