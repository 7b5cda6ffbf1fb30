"""The dynamo role: NVIDIA Dynamo serving, chosen with ``armada_serving: dynamo``.

It takes the place of the vllm_service role on a serving host (the deploy
runs one or the other): an OpenAI-compatible frontend
(``armada-dynamo-frontend.service``, ``python -m dynamo.frontend``) and vLLM
engine workers (``armada-dynamo-worker@<name>.service``, ``python -m
dynamo.vllm``), one unit instance per worker, each with its share of the
host's cores (CPU) or GPUs. Workers register in etcd and take requests over
nats (or the planes data names). ai-dynamo itself is installed into the
serving venv by the vllm role, with the vLLM its release pins.

Like vllm_service, each install carries its own environment and command
lines, and the units run ``<armada_root>/vllm/current``: an upgrade or a
rollback flips the whole set.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import files, systemd

from armada.facts.services import DynamoWorkerUnits
from armada.parsers.cpu import format_cpu_list, parse_cpu_list
from armada.profile import Profile
from armada.role_support import control_plane_host, managed_service, role_data, template_path
from armada.schema import DataError, dynamo_needs
from roles.model import model_dir, model_name
from roles.vllm_service import serving_env

FRONTEND = "armada-dynamo-frontend"
WORKER = "armada-dynamo-worker"


@dataclass(frozen=True)
class Worker:
    """One vLLM engine worker: its systemd instance name, its part, its own env and arguments."""

    name: str  # agg0, prefill0, decode0 ...
    part: str  # aggregated | prefill | decode
    env: dict = field(default_factory=dict)
    args: tuple = ()

    @property
    def unit(self) -> str:
        return f"{WORKER}@{self.name}.service"


def worker_parts(data: dict) -> list[tuple[str, str]]:
    """``(name, part)`` of every worker the data asks for (pure)."""
    if data["dynamo_worker_mode"] == "disaggregated":
        return ([(f"prefill{i}", "prefill") for i in range(data["dynamo_prefill_workers"])]
                + [(f"decode{i}", "decode") for i in range(data["dynamo_decode_workers"])])
    return [(f"agg{i}", "aggregated") for i in range(data["dynamo_workers"])]


def split(items: list, parts: int) -> list[list]:
    """Contiguous, as-even-as-possible shares of ``items`` (earlier shares take the remainder)."""
    size, extra = divmod(len(items), parts)
    shares, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        shares.append(items[start:end])
        start = end
    return shares


def plan_workers(host_name: str, profile: Profile, data: dict) -> list[Worker]:
    """Every worker with its share of the host: the cores of the profile's
    OpenMP binding split between CPU workers (one rank each, its own KV cache
    share), or the GPUs split between GPU workers (tensor parallel across its
    share). Disaggregated workers get a NIXL side channel port each. Pure."""
    parts = worker_parts(data)
    count = len(parts)
    key = "dynamo_workers" if data["dynamo_worker_mode"] == "aggregated" else "dynamo_prefill_workers"
    shares: list[dict] = []
    if profile.accelerator == "cuda":
        gpus = list(range(profile.gpu_count))
        if count > len(gpus):
            raise DataError(host_name, key, data[key], f"{count} workers for {len(gpus)} GPU(s): at least one GPU "
                            "per worker")
        for share in split(gpus, count)[:count]:
            share = share[: len(gpus) // count]  # the same tensor parallel size for every worker
            shares.append({"env": {"CUDA_VISIBLE_DEVICES": ",".join(map(str, share))}, "tp": len(share)})
    else:
        cpus = sorted({cpu for rank in (profile.omp_threads_bind or "").split("|") if rank
                       for cpu in parse_cpu_list(rank)})
        if count > len(cpus):
            raise DataError(host_name, key, data[key], f"{count} workers for {len(cpus)} bound core(s): at least "
                            "one core per worker")
        kvcache = max(1, (profile.kvcache_space_gib or count) // count)
        for share in split(cpus, count):
            shares.append({"env": {"VLLM_CPU_OMP_THREADS_BIND": format_cpu_list(share),
                                   "OMP_NUM_THREADS": str(len(share)),
                                   "VLLM_CPU_KVCACHE_SPACE": str(kvcache)}, "tp": 1})

    workers = []
    for index, ((name, part), share) in enumerate(zip(parts, shares)):
        args = [
            "--model", model_dir(data),
            "--served-model-name", model_name(data),
            "--dtype", profile.dtype,
            "--tensor-parallel-size", str(share["tp"]),
        ]
        if profile.accelerator == "cuda":
            args += ["--gpu-memory-utilization", str(profile.gpu_memory_utilization)]
        if data["vllm_max_model_len"]:
            args += ["--max-model-len", str(data["vllm_max_model_len"])]
        env = dict(share["env"])
        if part != "aggregated":
            transfer = {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
            if profile.accelerator == "cpu":
                transfer["kv_buffer_device"] = "cpu"
            args += ["--disaggregation-mode", part, "--kv-transfer-config", json.dumps(transfer, separators=(",", ":"))]
            env["VLLM_NIXL_SIDE_CHANNEL_PORT"] = str(data["dynamo_nixl_base_port"] + index)
            if data["dynamo_nixl_host"]:  # workers on other hosts reach this one's side channel
                env["VLLM_NIXL_SIDE_CHANNEL_HOST"] = data["dynamo_nixl_host"]
        workers.append(Worker(name, part, env, tuple(args + list(data["vllm_extra_args"]))))
    return workers


def common_env(profile: Profile, data: dict, control_plane) -> dict[str, str]:
    """What the frontend and every worker share: vLLM's serving environment plus
    the planes, the namespace and the control plane's user names (pure)."""
    own = {
        "DYN_DISCOVERY_BACKEND": data["dynamo_discovery_backend"],
        "DYN_REQUEST_PLANE": data["dynamo_request_plane"],
        "DYN_EVENT_PLANE": data["dynamo_event_plane"],
        "DYN_NAMESPACE": data["dynamo_namespace"],
    }
    if data["nats_password_file"]:
        own["NATS_AUTH_USERNAME"] = role_data(control_plane)["nats_user"]
    if data["etcd_password_file"]:
        own["ETCD_AUTH_USERNAME"] = "root"
    return serving_env(profile, data, control_plane, own)


def frontend_args(data: dict) -> list[str]:
    return ["--http-host", data["dynamo_frontend_host"], "--http-port", str(data["dynamo_frontend_port"])]


@deploy("armada dynamo")
def apply(profile: Profile):
    from pyinfra.facts.files import File

    from roles.vllm import current_link, venv_path
    from roles.vllm_service import UNIT as VLLM_UNIT
    from roles.vllm_service import flip_install, prune_installs

    data = role_data(host)
    tpl = template_path(__file__)
    install = venv_path(profile, data)
    current = current_link(data)
    control_plane = control_plane_host(host, inventory)
    try:
        workers = plan_workers(host.name, profile, data)
    except DataError as exc:
        from armada.deploy import ArmadaDataError

        raise ArmadaDataError(f"{exc}; nothing was changed on this host") from None
    user = data["armada_user"]

    # one way of serving at a time: the plain vLLM unit steps aside
    if host.get_fact(File, path=f"/etc/systemd/system/{VLLM_UNIT}.service"):
        systemd.service(name=f"{VLLM_UNIT}: stopped (serving through Dynamo)", service=f"{VLLM_UNIT}.service",
                        running=False, enabled=False)

    written = [files.template(name="Dynamo env (of this install)", src=tpl("dynamo.env.j2"),
                              dest=f"{install}/armada-dynamo.env", mode="644",
                              env=common_env(profile, data, control_plane))]
    written.append(files.template(
        name="Dynamo launcher (of this install)", src=tpl("armada-dynamo.j2"), dest=f"{install}/armada-dynamo",
        mode="755", python=f"{install}/bin/python", nats_password_file=data["nats_password_file"],
        etcd_password_file=data["etcd_password_file"]))
    written.append(files.put(
        name="Dynamo frontend command (of this install)", dest=f"{install}/armada-dynamo-frontend.args", mode="644",
        src=_args_file(frontend_args(data))))
    per_worker = []
    for worker in workers:
        prefix = f"{install}/armada-dynamo-worker-{worker.name}"
        per_worker.append([
            files.template(name=f"Dynamo worker {worker.name} env (of this install)", src=tpl("dynamo.env.j2"),
                           dest=f"{prefix}.env", mode="644", env=worker.env),
            files.put(name=f"Dynamo worker {worker.name} command (of this install)", src=_args_file(worker.args),
                      dest=f"{prefix}.args", mode="644"),
        ])
    wait = files.template(name="control plane wait", src=tpl("armada-wait-control-plane.j2"),
                          dest=f"{data['armada_root']}/bin/armada-wait-control-plane", mode="755",
                          timeout=data["dynamo_ready_timeout"])
    files.directory(name="HF home", path=f"{data['armada_data_dir']}/hf-home", user=user, group=user, mode="750")
    flip = flip_install(data, install)

    unit_values = dict(service_user=user, egress_env=f"{data['armada_config_dir']}/egress.env", current=current,
                       data_dir=data["armada_data_dir"], root=data["armada_root"])
    unit_values["wait_control_plane"] = bool(dynamo_needs(data))
    frontend_unit = files.template(name="Dynamo frontend unit", src=tpl("armada-dynamo-frontend.service.j2"),
                                   dest=f"/etc/systemd/system/{FRONTEND}.service", mode="644", **unit_values)
    worker_unit = files.template(name="Dynamo worker unit (template)", src=tpl("armada-dynamo-worker@.service.j2"),
                                 dest=f"/etc/systemd/system/{WORKER}@.service", mode="644", **unit_values)
    shared_files = [f"{install}/armada-dynamo.env", f"{install}/armada-dynamo", current]
    managed_service(FRONTEND, frontend_unit, [written[0], written[1], written[2], wait, flip],
                    watched=[*shared_files, f"{install}/armada-dynamo-frontend.args"])
    for worker, own in zip(workers, per_worker):
        prefix = f"{install}/armada-dynamo-worker-{worker.name}"
        managed_service(f"{WORKER}@{worker.name}", worker_unit, [written[0], written[1], *own, wait, flip],
                        watched=[*shared_files, f"{prefix}.env", f"{prefix}.args"])
    # workers the data no longer asks for
    wanted = {worker.unit for worker in workers}
    for unit in host.get_fact(DynamoWorkerUnits):
        if unit not in wanted:
            systemd.service(name=f"{unit}: stopped (no longer in data)", service=unit, running=False, enabled=False)
    prune_installs(data, install)


def _quoted(args) -> str:
    return " ".join(shlex.quote(a) for a in args)


def _args_file(args):
    from io import StringIO

    return StringIO(_quoted(args) + "\n")
