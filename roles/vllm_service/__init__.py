"""The vllm_service role: vLLM's systemd unit, its env file from the profile,
restarted only when the unit, the env or the install it runs changed."""

from __future__ import annotations

import shlex

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import files

from armada.profile import Profile
from armada.role_support import client_address, control_plane_host, managed_service, role_data, template_path
from roles.model import model_dir, model_name
from roles.vllm import venv_path

UNIT = "armada-vllm"


def service_env(profile: Profile, data: dict, control_plane) -> dict[str, str]:
    """The unit's environment, from the profile (a pure function)."""
    cp_data = role_data(control_plane)
    env = {
        "HF_HOME": f"{data['armada_data_dir']}/hf-home",
        "HF_HUB_OFFLINE": "1" if data["model_path"] else "0",
        "VLLM_NO_USAGE_STATS": "1",
        # where a Dynamo worker on this host finds the control plane
        "NATS_SERVER": f"nats://{client_address(cp_data['nats_listen'], control_plane)}:{cp_data['nats_port']}",
        "ETCD_ENDPOINTS": f"http://{client_address(cp_data['etcd_listen'], control_plane)}:{cp_data['etcd_client_port']}",
    }
    if profile.accelerator == "cpu":
        env["VLLM_CPU_OMP_THREADS_BIND"] = profile.omp_threads_bind
        env["VLLM_CPU_KVCACHE_SPACE"] = str(profile.kvcache_space_gib)
        env["OMP_NUM_THREADS"] = str(profile.omp_num_threads)
    env.update(profile.gpu_env)
    if profile.tcmalloc_path:
        env["LD_PRELOAD"] = profile.tcmalloc_path
    return env


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
def apply(profile: Profile):
    data = role_data(host)
    tpl = template_path(__file__)
    env_file = f"{data['armada_config_dir']}/vllm.env"
    env = files.template(
        name="vLLM env",
        src=tpl("vllm.env.j2"),
        dest=env_file,
        mode="644",
        env=service_env(profile, data, control_plane_host(host, inventory)),
    )
    files.directory(name="HF home", path=f"{data['armada_data_dir']}/hf-home", user=data["armada_user"],
                    group=data["armada_user"], mode="750")
    # the unit names the versioned venv, so that a new install changes the unit
    # (and restarts the service); `current` is what operators and upgrades flip
    python = f"{venv_path(profile, data)}/bin/python"
    exec_start = " ".join(shlex.quote(a) for a in [python, "-m", "vllm.entrypoints.openai.api_server",
                                                    *server_args(profile, data)])
    unit = files.template(
        name="vLLM unit",
        src=tpl("armada-vllm.service.j2"),
        dest=f"/etc/systemd/system/{UNIT}.service",
        mode="644",
        service_user=data["armada_user"],
        model_name=model_name(data),
        egress_env=f"{data['armada_config_dir']}/egress.env",
        env_file=env_file,
        data_dir=data["armada_data_dir"],
        exec_start=exec_start,
    )
    managed_service(UNIT, unit, [env])

