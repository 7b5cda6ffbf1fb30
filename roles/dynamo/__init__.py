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

import shlex
from collections.abc import Mapping
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd

from armada.errors import DataError
from armada.facts.services import DynamoWorkerUnits
from armada.profile import Profile
from armada.role import Fleet, Role, RoleRun
from armada.role_support import env_file_values, etcd_members, managed_service, template_path
from armada.serving import (
    DYNAMO_VLLM,
    FRONTEND,
    VLLM_UNIT,
    WORKER,
    current_link,
    dynamo_needs,
    flip_install,
    hf_home,
    plan_workers,
    prune_installs,
    service_home,
    serving_env,
    serving_sandbox,
    venv_path,
)
from roles.dynamo import health
from roles.dynamo.defaults import KEYS


def common_env(profile: Profile, data: dict, control_plane, cp_data: dict, etcd_members=()) -> dict[str, str]:
    """What the frontend and every worker share: vLLM's serving environment plus
    the planes, the namespace and the control plane's user names (pure)."""
    own = {
        "DYN_DISCOVERY_BACKEND": data["dynamo_discovery_backend"],
        "DYN_REQUEST_PLANE": data["dynamo_request_plane"],
        "DYN_EVENT_PLANE": data["dynamo_event_plane"],
        "DYN_NAMESPACE": data["dynamo_namespace"],
    }
    if data["dynamo_etcd_lease_ttl"]:
        own["ETCD_LEASE_TTL"] = str(data["dynamo_etcd_lease_ttl"])
    if data["nats_password_file"]:
        own["NATS_AUTH_USERNAME"] = cp_data["nats_user"]
    if data["etcd_client_password_file"] and not data["dynamo_etcd_cert_file"]:
        own["ETCD_AUTH_USERNAME"] = cp_data["etcd_client_user"]  # readwrite on Dynamo's keys only, never root
    return serving_env(profile, data, control_plane, cp_data, own, etcd_members)


def credentials(data: dict) -> dict[str, str]:
    """The secrets Dynamo's units are handed by systemd (LoadCredential: root
    reads the 0600 file, the unit gets a private copy), by credential name: the
    service user itself can read no secret file. With a client certificate
    (dynamo_etcd_cert_file) Dynamo logs in to etcd with it, not with the
    password: its etcd client prefers a user name and password when both are
    there, and then drops the CA (see etcd_tls_gap)."""
    if data["dynamo_etcd_cert_file"]:
        etcd = {"etcd-ca": data["etcd_tls_ca_file"], "etcd-cert": data["dynamo_etcd_cert_file"],
                "etcd-key": data["dynamo_etcd_key_file"]}
    else:
        etcd = {"etcd-password": data["etcd_client_password_file"]}
    named = {"nats-password": data["nats_password_file"], **etcd}
    return {name: path for name, path in named.items() if path}


def frontend_args(data: dict) -> list[str]:
    return ["--http-host", data["dynamo_frontend_host"], "--http-port", str(data["dynamo_frontend_port"])]


@deploy("armada dynamo")
def apply(run: RoleRun):
    data, profile = run.data, run.profile
    tpl = template_path(__file__)
    install = venv_path(profile, data)
    current = current_link(data)
    workers = plan_workers(host.name, profile, data)  # its data errors: preflight, before any change
    user = data["armada_user"]

    # one way of serving at a time: the plain vLLM unit steps aside
    if host.get_fact(File, path=f"/etc/systemd/system/{VLLM_UNIT}.service"):
        systemd.service(name=f"{VLLM_UNIT}: stopped (serving through Dynamo)", service=f"{VLLM_UNIT}.service",
                        running=False, enabled=False)

    written = [files.template(name="Dynamo env (of this install)", src=tpl("dynamo.env.j2"),
                              dest=f"{install}/armada-dynamo.env", mode="644",
                              env=env_file_values(common_env(profile, data, run.control_plane, run.cp_data, etcd_members(run))))]
    written.append(files.template(
        name="Dynamo launcher (of this install)", src=tpl("armada-dynamo.j2"), dest=f"{install}/armada-dynamo",
        mode="755", python=f"{install}/bin/python", credentials=credentials(data)))
    written.append(files.put(
        name="Dynamo frontend command (of this install)", dest=f"{install}/armada-dynamo-frontend.args", mode="644",
        src=_args_file(frontend_args(data))))
    per_worker = []
    for worker in workers:
        prefix = f"{install}/armada-dynamo-worker-{worker.name}"
        per_worker.append([
            files.template(name=f"Dynamo worker {worker.name} env (of this install)", src=tpl("dynamo.env.j2"),
                           dest=f"{prefix}.env", mode="644", env=env_file_values(worker.env)),
            files.put(name=f"Dynamo worker {worker.name} command (of this install)", src=_args_file(worker.args),
                      dest=f"{prefix}.args", mode="644"),
        ])
    wait = files.template(name="control plane wait", src=tpl("armada-wait-control-plane.j2"),
                          dest=f"{data['armada_root']}/bin/armada-wait-control-plane", mode="755",
                          timeout=data["dynamo_ready_timeout"])
    files.directory(name="HF home", path=hf_home(data), user=user, group=user, mode="750")
    flip = flip_install(data, install)

    unit_values = dict(service_user=user, egress_env=f"{data['armada_config_dir']}/egress.env", current=current,
                       home=service_home(data), root=data["armada_root"], hardening=serving_sandbox(profile, data),
                       credentials=credentials(data))
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
    return StringIO(_quoted(args) + "\n")


def serves_through_dynamo(data) -> bool:
    return "vllm_service" in data["armada_roles"] and data["armada_serving"] == "dynamo"


def checks(host: str, data):
    """Dynamo serving: a release armada knows, the vLLM it pins, nats and etcd where its planes need them."""
    if not serves_through_dynamo(data):
        return
    roles = data["armada_roles"]
    release = data["dynamo_version"]
    if release not in DYNAMO_VLLM:
        yield DataError(host, "dynamo_version", release, "armada knows the vLLM pinned by Dynamo "
                        + ", ".join(DYNAMO_VLLM) + " only")
    elif data["vllm_version"] != DYNAMO_VLLM[release]:
        yield DataError(host, "vllm_version", data["vllm_version"], f"ai-dynamo {release} runs vLLM "
                        f"{DYNAMO_VLLM[release]} (its vllm extra pins it); set vllm_version to {DYNAMO_VLLM[release]!r}")
    if "torchvision" in data["vllm_exclude_deps"]:
        yield DataError(host, "vllm_exclude_deps", data["vllm_exclude_deps"], "Dynamo's vLLM worker imports "
                        "torchvision (through transformers' Qwen2-VL image processor): keep it; armada takes it from "
                        "the torch index, built for the host's torch")
    if data["dynamo_worker_mode"] == "disaggregated" and not (data["dynamo_prefill_workers"]
                                                              or data["dynamo_decode_workers"]):
        yield DataError(host, "dynamo_prefill_workers", 0, "no worker on this host: dynamo_prefill_workers and "
                        "dynamo_decode_workers are both 0")
    if data["dynamo_worker_mode"] == "disaggregated":
        # worker i's NIXL side channel listens on base + i
        count = data["dynamo_prefill_workers"] + data["dynamo_decode_workers"]
        last = data["dynamo_nixl_base_port"] + count - 1
        if last > 65535:
            yield DataError(host, "dynamo_nixl_base_port", data["dynamo_nixl_base_port"], f"its {count} workers' "
                            f"NIXL ports run to {last}: base + workers - 1 must be at most 65535")
    local = not data["armada_control_plane"]
    for key, needed in dynamo_needs(data):
        if local and needed not in roles:
            yield DataError(host, key, needed, f"no {needed} host: add the {needed} role to this host or name "
                            "armada_control_plane (a host that runs it)")
    if local:
        yield from etcd_tls_gap(host, data, host, data)


def preflight(run: RoleRun):
    """Workers that fit the host: at least one core (CPU) or GPU each."""
    try:
        plan_workers(run.host.name, run.profile, run.data)
    except DataError as exc:
        yield exc


def disaggregation_gaps(hosts) -> list[DataError]:
    """Disaggregated Dynamo across hosts (pure, on complete data): the hosts
    sharing a control plane and a namespace must hold at least one prefill
    and one decode worker between them, and when they are more than one host
    each must name the address its NIXL side channel is reached at (the
    default, localhost, is unreachable from the others)."""
    namespaces: dict[tuple[str, str], list[tuple[str, Mapping[str, Any]]]] = {}
    for name, data in hosts:
        if (data["armada_serving"] == "dynamo" and "vllm_service" in data["armada_roles"]
                and data["dynamo_worker_mode"] == "disaggregated"):
            # file discovery: each host its own namespace
            plane = data["armada_control_plane"] or name if data["dynamo_discovery_backend"] == "etcd" else name
            namespaces.setdefault((plane, data["dynamo_namespace"]), []).append((name, data))
    gaps = []
    for (plane, namespace), members in namespaces.items():
        names = ", ".join(name for name, _ in members)
        for key, part in (("dynamo_prefill_workers", "prefill"), ("dynamo_decode_workers", "decode")):
            if not sum(data[key] for _, data in members):
                first, data = members[0]
                gaps.append(DataError(first, key, data[key], f"no {part} worker in Dynamo namespace {namespace!r} "
                                      f"on {plane} (its disaggregated hosts: {names})"))
        if len(members) > 1:
            for name, data in members:
                if data["dynamo_nixl_host"] in ("", "localhost", "127.0.0.1", "::1"):
                    gaps.append(DataError(name, "dynamo_nixl_host", data["dynamo_nixl_host"] or None,
                                          f"namespace {namespace!r} spans {names}: name this host's address "
                                          "the others reach its NIXL side channel at"))
    return gaps


def control_plane_gaps(name: str, full, cp_name: str, cp_full) -> list[DataError]:
    """Dynamo's planes and discovery on nats/etcd need the control plane to run them (complete data)."""
    if not serves_through_dynamo(full):
        return []
    gaps = []
    for key, needed in dynamo_needs(full):
        if needed not in cp_full["armada_roles"]:
            gaps.append(DataError(name, key, needed, f"the control plane {cp_name} runs no {needed} "
                                  f"(its armada_roles: {', '.join(cp_full['armada_roles'])})"))
    gaps += etcd_tls_gap(name, full, cp_name, cp_full)
    return gaps


def etcd_tls_gap(name: str, full, cp_name: str, cp_full) -> list[DataError]:
    """Dynamo's discovery on an etcd that speaks TLS needs a client certificate (complete data). Dynamo
    1.6.1's etcd client trusts a private CA only with a client certificate: with ETCD_AUTH_USERNAME/PASSWORD
    it drops ETCD_AUTH_CA and verifies against no root at all (seen: etcd logs "tls: unknown certificate
    authority"; SSL_CERT_FILE does not help); ETCD_AUTH_CA/CLIENT_CERT/CLIENT_KEY (PEM text, not paths)
    connect, with the certificate's CommonName as etcd user, which etcd reads only under --client-cert-auth
    (etcd_client_cert_auth). So: an etcd over TLS asks for client certificates, and this host has one."""
    uses_etcd = ("dynamo_discovery_backend", "etcd") in dynamo_needs(full)
    where = "this host's etcd" if name == cp_name else f"the control plane {cp_name}'s etcd"
    if not uses_etcd or not cp_full["etcd_tls_cert_file"]:
        if uses_etcd and full["dynamo_etcd_cert_file"]:
            return [DataError(name, "dynamo_etcd_cert_file", full["dynamo_etcd_cert_file"],
                              f"{where} speaks plain http and reads no client certificate: leave it unset")]
        return []
    if not cp_full["etcd_client_cert_auth"]:
        return [DataError(name, "armada_serving", full["armada_serving"],
                          f"{where} speaks TLS (etcd_tls_cert_file) without asking clients for certificates, and "
                          "Dynamo's etcd client verifies a private CA only with a client certificate, which etcd "
                          f"reads only with etcd_client_cert_auth: set etcd_client_cert_auth: true on {cp_name} and "
                          "dynamo_etcd_cert_file/dynamo_etcd_key_file here, or serve this host with vLLM "
                          "(armada_serving: vllm)")]
    return [DataError(name, key, None, f"{where} asks every client for a certificate (etcd_client_cert_auth): set "
                      f"{key} to Dynamo's client {what} (on this host; signed by etcd_tls_ca_file, its CommonName "
                      f"{cp_full['etcd_client_user']!r}, the etcd user Dynamo logs in as)")
            for key, what in (("dynamo_etcd_cert_file", "certificate"), ("dynamo_etcd_key_file", "key"))
            if not full[key]]


def fleet_checks(fleet: Fleet):
    for name, data in fleet.hosts:
        other = fleet.control_plane(name, data)
        if other is not None:
            yield from control_plane_gaps(name, data, *other)
    yield from disaggregation_gaps(list(fleet.hosts))


ROLE = Role(
    name="dynamo",
    doc="NVIDIA Dynamo serving (frontend + vLLM workers on nats and etcd) in vllm_service's place when "
        "armada_serving is 'dynamo'",
    keys=KEYS,
    checks=checks,
    fleet_checks=fleet_checks,
    preflight=preflight,
    apply=apply,
    health=health.checks,
    selected=serves_through_dynamo,
    listed=False,
    serves=True,
    binds=("dynamo_frontend_port",),
)
