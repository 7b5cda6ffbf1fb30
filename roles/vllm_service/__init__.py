"""The vllm_service role: vLLM's systemd unit, its env file from the profile,
restarted only when the unit, the env or the install it runs changed."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd

from armada.errors import DataError
from armada.facts.services import DynamoWorkerUnits
from armada.profile import Profile
from armada.role import Role, RoleRun
from armada.role_support import env_file_values, etcd_members, managed_service, open_endpoint, template_path
from armada.serving import (
    FRONTEND,
    VLLM_UNIT,
    current_link,
    flip_install,
    model_dir,
    hf_home,
    model_name,
    prune_installs,
    service_home,
    serving_env,
    serving_sandbox,
    venv_path,
)
from roles.vllm_service import health

UNIT = VLLM_UNIT


def service_env(profile: Profile, data: dict, control_plane, cp_data: dict, etcd_members=()) -> dict[str, str]:
    """vLLM's unit environment, from the profile (a pure function)."""
    own = {}
    if profile.accelerator == "cpu":
        own = {
            "VLLM_CPU_OMP_THREADS_BIND": profile.omp_threads_bind,
            "VLLM_CPU_KVCACHE_SPACE": str(profile.kvcache_space_gib),
            "OMP_NUM_THREADS": str(profile.omp_num_threads),
        }
    return serving_env(profile, data, control_plane, cp_data, own, etcd_members)


def server_args(profile: Profile, data: dict) -> list[str]:
    args = [
        "--model", model_dir(data),
        "--served-model-name", model_name(data),
        "--host", data["vllm_host"],
        "--port", str(data["vllm_port"]),
        "--dtype", profile.dtype,
        "--tensor-parallel-size", str(profile.tensor_parallel_size),
    ]
    if profile.accelerator == "cuda":
        args += ["--gpu-memory-utilization", str(profile.gpu_memory_utilization)]
    if data["vllm_max_model_len"]:
        args += ["--max-model-len", str(data["vllm_max_model_len"])]
    return args + list(data["vllm_extra_args"])


@deploy("armada vllm service")
def apply(run: RoleRun):
    data, profile = run.data, run.profile
    tpl = template_path(__file__)
    install = venv_path(profile, data)
    current = current_link(data)
    _stop_dynamo()

    env = files.template(
        name="vLLM env (of this install)",
        src=tpl("vllm.env.j2"),
        dest=f"{install}/armada-vllm.env",
        mode="644",
        env=env_file_values(service_env(profile, data, run.control_plane, run.cp_data, etcd_members(run))),
    )
    exec_line = " ".join(
        shlex.quote(a) for a in [f"{install}/bin/python", "-m", "vllm.entrypoints.openai.api_server",
                                 *server_args(profile, data)]
    )
    script = files.template(name="vLLM command (of this install)", src=tpl("armada-serve.j2"),
                            dest=f"{install}/armada-serve", mode="755", exec_line=exec_line)
    files.directory(name="HF home", path=hf_home(data), user=data["armada_user"],
                    group=data["armada_user"], mode="750")
    flip = flip_install(data, install)
    unit = files.template(
        name="vLLM unit",
        src=tpl("armada-vllm.service.j2"),
        dest=f"/etc/systemd/system/{UNIT}.service",
        mode="644",
        service_user=data["armada_user"],
        egress_env=f"{data['armada_config_dir']}/egress.env",
        current=current,
        home=service_home(data),
        hardening=serving_sandbox(profile, data),
        api_key_file=data["vllm_api_key_file"],
    )
    managed_service(UNIT, unit, [env, script, flip],
                    watched=[f"{install}/armada-vllm.env", f"{install}/armada-serve", current])
    prune_installs(data, install)


def _stop_dynamo() -> None:
    """One way of serving at a time: Dynamo's units step aside when the host serves with plain vLLM."""
    units = list(host.get_fact(DynamoWorkerUnits))
    if host.get_fact(File, path=f"/etc/systemd/system/{FRONTEND}.service"):
        units.insert(0, f"{FRONTEND}.service")
    for unit in units:
        systemd.service(name=f"{unit}: stopped (serving with vLLM)", service=unit, running=False, enabled=False)


def checks(name: str, data):
    roles = data["armada_roles"]
    if "vllm_service" in roles and not {"vllm", "model"} <= set(roles):
        yield DataError(name, "armada_roles", roles, "vllm_service needs the vllm and model roles on the same host")
    if _serves(data):
        yield from open_endpoint(name, data, "vllm_host", ("vllm_api_key_file",), "vLLM's OpenAI server",
                                 "anyone on the network could run prompts")


def _serves(data) -> bool:
    return "vllm_service" in data["armada_roles"] and data["armada_serving"] != "dynamo"


ROLE = Role(
    name="vllm_service",
    doc="vLLM's systemd unit serving the install `current` points at (Dynamo serves instead when armada_serving "
        "is 'dynamo')",
    checks=checks,
    apply=apply,
    health=health.checks,
    selected=_serves,
    serves=True,
    binds=("vllm_port",),
)
