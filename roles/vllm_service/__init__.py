"""The vllm_service role: vLLM's systemd unit, its env file from the profile,
restarted only when the unit, the env or the install it runs changed."""

from __future__ import annotations

import shlex

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.facts.files import Link
from pyinfra.operations import files, systemd

from armada.facts.services import DynamoWorkerUnits
from armada.facts.torch import VllmInstalls
from armada.profile import Profile
from armada.role_support import control_plane_host, etcd_url, managed_service, nats_url, role_data, template_path
from roles.model import model_dir, model_name
from roles.vllm import current_link, previous_link, venv_path

UNIT = "armada-vllm"


def serving_env(profile: Profile, data: dict, control_plane, own: dict[str, str]) -> dict[str, str]:
    """What every serving process on a host gets, vLLM's unit and Dynamo's alike
    (pure): the model cache, no usage stats, where the control plane is, then
    the caller's ``own`` keys, then the GPU environment and tcmalloc."""
    cp_data = role_data(control_plane)
    env = {
        "HF_HOME": f"{data['armada_data_dir']}/hf-home",
        "HF_HUB_OFFLINE": "1" if data["model_path"] else "0",
        "VLLM_NO_USAGE_STATS": "1",
        # where a Dynamo worker on this host finds the control plane
        "NATS_SERVER": nats_url(control_plane),
        "ETCD_ENDPOINTS": etcd_url(control_plane),
    }
    # the CA files a Dynamo runtime checks a TLS control plane against
    if cp_data["nats_tls_cert_file"]:
        env["NATS_TLS_CA_CERT_PATH"] = data["nats_tls_ca_file"]
    if cp_data["etcd_tls_cert_file"]:
        env["ETCD_AUTH_CA"] = data["etcd_tls_ca_file"]
    env.update(own)
    env.update(profile.gpu_env)
    if profile.tcmalloc_path:
        env["LD_PRELOAD"] = profile.tcmalloc_path
    return env


def service_env(profile: Profile, data: dict, control_plane) -> dict[str, str]:
    """vLLM's unit environment, from the profile (a pure function)."""
    own = {}
    if profile.accelerator == "cpu":
        own = {
            "VLLM_CPU_OMP_THREADS_BIND": profile.omp_threads_bind,
            "VLLM_CPU_KVCACHE_SPACE": str(profile.kvcache_space_gib),
            "OMP_NUM_THREADS": str(profile.omp_num_threads),
        }
    return serving_env(profile, data, control_plane, own)


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


def installs_to_prune(installs: list[str], keep: set[str], count: int) -> list[str]:
    """Installs (newest first) beyond ``count``, never one in ``keep`` (pure)."""
    kept = [path for path in installs if path in keep]
    for path in installs:
        if len(kept) >= count:
            break
        if path not in kept:
            kept.append(path)
    return [path for path in installs if path not in kept]


@deploy("armada vllm service")
def apply(profile: Profile):
    data = role_data(host)
    tpl = template_path(__file__)
    install = venv_path(profile, data)
    current = current_link(data)
    _stop_dynamo()

    env = files.template(
        name="vLLM env (of this install)",
        src=tpl("vllm.env.j2"),
        dest=f"{install}/armada-vllm.env",
        mode="644",
        env=service_env(profile, data, control_plane_host(host, inventory)),
    )
    exec_line = " ".join(
        shlex.quote(a) for a in [f"{install}/bin/python", "-m", "vllm.entrypoints.openai.api_server",
                                 *server_args(profile, data)]
    )
    script = files.template(name="vLLM command (of this install)", src=tpl("armada-serve.j2"),
                            dest=f"{install}/armada-serve", mode="755", exec_line=exec_line)
    files.directory(name="HF home", path=f"{data['armada_data_dir']}/hf-home", user=data["armada_user"],
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
        data_dir=data["armada_data_dir"],
        api_key_file=data["vllm_api_key_file"],
    )
    managed_service(UNIT, unit, [env, script, flip],
                    watched=[f"{install}/armada-vllm.env", f"{install}/armada-serve", current])
    prune_installs(data, install)


def _stop_dynamo() -> None:
    """One way of serving at a time: Dynamo's units step aside when the host serves with plain vLLM."""
    from pyinfra.facts.files import File

    from roles.dynamo import FRONTEND

    units = list(host.get_fact(DynamoWorkerUnits))
    if host.get_fact(File, path=f"/etc/systemd/system/{FRONTEND}.service"):
        units.insert(0, f"{FRONTEND}.service")
    for unit in units:
        systemd.service(name=f"{unit}: stopped (serving with vLLM)", service=unit, running=False, enabled=False)


def flip_install(data: dict, install: str):
    """Point ``current`` at ``install``, remembering what served in ``previous`` (for a rollback)."""
    current, previous = current_link(data), previous_link(data)
    serving = (host.get_fact(Link, path=current) or {}).get("link_target")
    if serving and serving != install:
        files.link(name="previous vLLM install", path=previous, target=serving)
    return files.link(name="current vLLM install", path=current, target=install)


def prune_installs(data: dict, install: str) -> None:
    """Remove installs beyond vllm_keep_installs; never what serves, what served before, or what `previous` names."""
    serving = (host.get_fact(Link, path=current_link(data)) or {}).get("link_target")
    remembered = (host.get_fact(Link, path=previous_link(data)) or {}).get("link_target")
    keep = {install} | {path for path in (serving, remembered) if path}
    for old in installs_to_prune(host.get_fact(VllmInstalls, root=data["armada_root"]), keep,
                                 data["vllm_keep_installs"]):
        files.directory(name=f"prune old vLLM install {old.rsplit('/', 1)[-1]}", path=old, present=False)


@deploy("armada vllm rollback")
def rollback(profile: Profile):
    """Point ``current`` back at ``previous`` (swapping them) and restart vLLM."""
    data = role_data(host)
    current, previous = current_link(data), previous_link(data)
    serving = (host.get_fact(Link, path=current) or {}).get("link_target")
    before = (host.get_fact(Link, path=previous) or {}).get("link_target")
    if not before:
        raise ValueError(f"{host.name}: no previous vLLM install to roll back to ({previous} is missing)")
    files.link(name="current vLLM install -> previous", path=current, target=before)
    if serving:
        files.link(name="previous vLLM install -> the one rolled back", path=previous, target=serving)
    for unit in serving_units(host.name, profile, data):
        systemd.service(name=f"{unit}: restart on the previous install", service=unit, running=True, restarted=True)


def serving_units(host_name: str, profile: Profile, data: dict) -> list[str]:
    """The units that serve on this host (pure): vLLM's, or Dynamo's frontend and workers."""
    if data["armada_serving"] == "dynamo":
        from roles.dynamo import FRONTEND, plan_workers

        return [f"{FRONTEND}.service", *(w.unit for w in plan_workers(host_name, profile, data))]
    return [f"{UNIT}.service"]
