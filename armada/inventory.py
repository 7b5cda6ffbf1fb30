"""Loading an inventory the way pyinfra's CLI does, and checking its data.

Nothing here connects to a host: ``armada check`` and the start of every
deploy run the same :func:`validate_inventory`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pyinfra.api import Inventory

from armada.schema import DataError, dynamo_needs, validate_host_data, with_defaults

# Groups pyinfra makes itself: not worth a summary line.
_IMPLICIT_GROUPS = ("all",)


def load_inventory(path: str) -> Inventory:
    """An inventory file (with group_data/ beside it or in the cwd), as the CLI loads it."""
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    if not os.path.exists(path) and "@" not in path and "," not in path:
        raise FileNotFoundError(f"inventory {path!r} not found")
    # pyinfra executes inventory and group_data files inside a state context
    with ctx_state.use(State(check_for_changes=False)):
        return make_inventory(path, cwd=os.getcwd())


class DataFileError(ValueError):
    """A YAML or JSON data file that does not parse, naming file, line and column."""


def load_data(path: str) -> dict[str, Any]:
    """Data kept in a YAML or JSON file, for use in an inventory (as Ansible's
    group_vars): ``graviton = (hosts, load_data("group_vars/graviton.yaml"))``.

    Raises :class:`DataFileError` naming the file, line and column of a
    syntax error, or saying that the top level is not a mapping.
    """
    import json

    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise DataFileError(f"data file {path}: {exc.strerror}") from None
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(f"data file {path}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        raise DataFileError(f"data file {path}: {where}{getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise DataFileError(f"data file {path}: the top level must map key names to values, not {type(data).__name__}")
    return data


def host_data(host) -> dict[str, Any]:
    """A host's merged data as the inventory gives it (no role defaults)."""
    return host.data.dict()


def validate_inventory(inventory: Inventory) -> list[DataError]:
    errors: list[DataError] = []
    names = {host.name for host in inventory}
    for host in inventory:
        data = host_data(host)
        host_errors = validate_host_data(host.name, data)
        control_plane = data.get("armada_control_plane")
        if not host_errors and control_plane and control_plane not in names:
            host_errors.append(
                DataError(host.name, "armada_control_plane", control_plane, "no such host in the inventory")
            )
        checking = data.get("ssh_strict_host_key_checking")
        if not host_errors and str(checking).lower() in ("no", "off", "false") and not data.get(
            "armada_allow_unverified_ssh"
        ):
            host_errors.append(DataError(
                host.name, "ssh_strict_host_key_checking", checking,
                "host keys unchecked: anyone on the path can impersonate the host; use 'yes' with known_hosts, "
                "or pyinfra's default 'accept-new', or set armada_allow_unverified_ssh: true (throwaway labs only)",
            ))
        if not host_errors:
            host_errors.extend(tls_gaps(host.name, data))
        if not host_errors and control_plane and control_plane in names and control_plane != host.name:
            cp_data = host_data(inventory.get_host(control_plane))
            host_errors.extend(_credential_gaps(host.name, data, control_plane, cp_data))
            host_errors.extend(_dynamo_control_plane_gaps(host.name, data, control_plane, cp_data))
        group = data.get("etcd_cluster_group")
        if not host_errors and group and not inventory.groups.get(group):
            host_errors.append(DataError(host.name, "etcd_cluster_group", group, "no such group in the inventory"))
        errors.extend(host_errors)
    if not errors:
        errors.extend(disaggregation_gaps([(host.name, with_defaults(host_data(host))) for host in inventory]))
    return errors


def disaggregation_gaps(hosts: list[tuple[str, Mapping[str, Any]]]) -> list[DataError]:
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


def tls_gaps(name: str, data: Mapping[str, Any]) -> list[DataError]:
    """TLS of nats and etcd on one host (pure): a certificate comes with its
    key, and etcd's own checks and auth setup need the CA its certificate is
    checked against."""
    gaps = []
    for service in ("nats", "etcd"):
        cert, key = f"{service}_tls_cert_file", f"{service}_tls_key_file"
        for have, missing in ((cert, key), (key, cert)):
            if data.get(have) and not data.get(missing):
                gaps.append(DataError(name, missing, None, f"{have} is set: {service} TLS needs both the "
                                      "certificate and its key (files on the host)"))
    if data.get("etcd_tls_cert_file") and not data.get("etcd_tls_ca_file"):
        gaps.append(DataError(name, "etcd_tls_ca_file", None, "etcd_tls_cert_file is set: name the CA file its "
                              "certificate is checked against (this host's own checks use it)"))
    return gaps


def _credential_gaps(name: str, data: Mapping[str, Any], cp_name: str, cp: Mapping[str, Any]) -> list[DataError]:
    """A host using a control plane whose nats or etcd needs a password must have
    that password too, and the CA of one that speaks TLS."""
    gaps = []
    for key, service in (("nats_tls_ca_file", "nats"), ("etcd_tls_ca_file", "etcd")):
        if cp.get(f"{service}_tls_cert_file") and not data.get(key):
            gaps.append(DataError(name, key, None, f"{cp_name}'s {service} speaks TLS: set {key} to the path of "
                                  "the CA file (on this host) its certificate is checked against"))
    for key, service in (("nats_password_file", "nats"), ("etcd_password_file", "etcd")):
        if cp.get(key) and not data.get(key):
            gaps.append(DataError(name, key, None, f"{cp_name}'s {service} requires a password: set {key} to "
                                  "the path of that password's file on this host"))
    return gaps


def _dynamo_control_plane_gaps(name: str, data: Mapping[str, Any], cp_name: str,
                               cp: Mapping[str, Any]) -> list[DataError]:
    """Dynamo's planes and discovery on nats/etcd need the control plane to run them."""
    full, cp_full = with_defaults(data), with_defaults(cp)
    if full["armada_serving"] != "dynamo" or "vllm_service" not in full["armada_roles"]:
        return []
    gaps = []
    for key, needed in dynamo_needs(full):
        if needed not in cp_full["armada_roles"]:
            gaps.append(DataError(name, key, needed, f"the control plane {cp_name} runs no {needed} "
                                  f"(its armada_roles: {', '.join(cp_full['armada_roles'])})"))
    return gaps


def model_bytes(data: Mapping[str, Any]) -> int | None:
    """Size of the model's weights when known before touching a host."""
    path = data.get("model_path")
    if path and os.path.isdir(os.path.expanduser(path)):
        total = 0
        for root, _, files in os.walk(os.path.expanduser(path)):
            total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
        return total
    size = data.get("model_size_gib")
    return int(size * 2**30) if size is not None else None


def group_summaries(inventory: Inventory, inventory_path: str) -> list[str]:
    """One line per group; the group pyinfra names after the file is left out."""
    lines = []
    skip = (*_IMPLICIT_GROUPS, os.path.splitext(os.path.basename(inventory_path))[0])
    file_groups = {name: hosts for name, hosts in inventory.groups.items() if name not in skip and hosts}
    for name, hosts in sorted(file_groups.items()):
        data = host_data(hosts[0])
        model = data.get("model_path") or data.get("model_id") or "-"
        lines.append(
            f"{name}: {len(hosts)} host(s), vllm {data.get('vllm_version', 'default')} "
            f"({data.get('vllm_strategy', 'auto')}), accelerator {data.get('vllm_accelerator', 'auto')}, model {model}"
        )
    return lines
