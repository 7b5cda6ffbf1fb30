"""One schema for group and host data.

Each role declares its keys in ``roles/<role>/defaults.py`` as :class:`Key`
objects (name, type, default, what it is for, what values are allowed). This
module gathers them, applies defaults and checks a host's data: wrong types,
unknown keys (with a "did you mean"), impossible values and settings that
contradict each other. Every problem is reported with host, key and value.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

# Roles whose defaults.py declare data keys, in deploy order.
ROLE_MODULES = (
    "roles.base.defaults",
    "roles.nvidia.defaults",
    "roles.nats.defaults",
    "roles.etcd.defaults",
    "roles.vllm.defaults",
    "roles.model.defaults",
    "roles.dynamo.defaults",
)

# Keys naming a secret: a file ON THE HOST (its value never passes through
# armada); made 0600 for the service user by the base role, checked before
# any change.
SECRET_FILE_KEYS = ("vllm_api_key_file", "model_hub_token_file", "nats_password_file", "etcd_password_file")
# TLS files on the host, by what each must hold: keys are secrets (0600, the
# service user's), certificates are not (0644)
TLS_FILE_KEYS = {
    "nats_tls_cert_file": "certificate", "nats_tls_key_file": "key", "nats_tls_ca_file": "certificate",
    "etcd_tls_cert_file": "certificate", "etcd_tls_key_file": "key", "etcd_tls_ca_file": "certificate",
}

# Keys that belong to pyinfra itself (connectors, global operation arguments).
PYINFRA_KEY_PREFIXES = ("ssh_", "winrm_", "docker_", "dockerssh_", "chroot_", "local_", "terraform_", "_")


class DataError(ValueError):
    """A bad value in inventory data, naming host, key and value."""

    def __init__(self, host: str, key: str, value: Any, message: str):
        self.host, self.key, self.value, self.message = host, key, value, message
        super().__init__(f"host {host!r}: {key} = {value!r}: {message}")


@dataclass(frozen=True)
class Key:
    name: str
    types: type | tuple[type, ...]
    default: Any
    doc: str
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    # returns an error message for a bad value, None when fine
    check: Callable[[Any], str | None] | None = None

    def type_name(self) -> str:
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        names = " or ".join(t.__name__ for t in types)
        return f"{names} or None" if self.nullable else names

    def validate(self, host: str, value: Any) -> DataError | None:
        if value is None:
            return None if self.nullable else DataError(host, self.name, value, f"must be of type {self.type_name()}")
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        # bool is an int subclass in Python; a port of True is a mistake
        if isinstance(value, bool) and bool not in types:
            return DataError(host, self.name, value, f"must be of type {self.type_name()}, not a bool")
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, types):
            return DataError(host, self.name, value, f"must be of type {self.type_name()}, not {type(value).__name__}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            return DataError(host, self.name, value, f"must be one of {allowed}")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                return DataError(host, self.name, value, problem)
        return None


# -- reusable checks ---------------------------------------------------------


def port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "must be a TCP port, 1-65535"


def at_least(minimum: int | float) -> Callable[[Any], str | None]:
    def check(value):
        return None if value >= minimum else f"must be >= {minimum}"

    return check


def fraction(value: float) -> str | None:
    return None if 0 < value <= 1 else "must be in (0, 1]"


def requirement(value: str) -> str | None:
    try:
        Requirement(value)
    except InvalidRequirement as exc:
        return f"is not a pip requirement: {exc}"
    return None


def version(value: str) -> str | None:
    try:
        Version(value)
    except InvalidVersion:
        return "is not a version number (PEP 440), e.g. '2.13.0'"
    return None


def url(value: str) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme in ("http", "https", "file") and (parsed.netloc or parsed.scheme == "file"):
        return None
    return "must be an http(s):// or file:// URL"


def url_or_dir(value: str) -> str | None:
    """A folder on the control machine or a URL (wheelhouses, models)."""
    if re.match(r"^[a-z]+://", value):
        return url(value)
    if not os.path.isdir(os.path.expanduser(value)):
        return "is neither a URL nor an existing folder on the control machine"
    return None


def absolute_path(value: str) -> str | None:
    return None if value.startswith("/") else "must be an absolute path on the host"


def secret_path(value: str) -> str | None:
    """A secret file's path: absolute, and plain enough to sit unquoted in unit files and scripts."""
    if not value.startswith("/"):
        return "must be an absolute path on the host"
    return None if re.fullmatch(r"[A-Za-z0-9._/@+-]+", value) else "may hold only letters, digits and . _ / @ + -"


def tls_keys(service: str, what: str, cert_note: str, ca_note: str) -> tuple["Key", ...]:
    """The three TLS file keys of ``service`` (nats, etcd): certificate, key, CA."""
    return (
        Key(f"{service}_tls_cert_file", str, None, f"PEM certificate FILE ON THE HOST that {what} presents "
            f"{cert_note}", nullable=True, check=secret_path),
        Key(f"{service}_tls_key_file", str, None, f"PEM private key FILE ON THE HOST of {service}_tls_cert_file; "
            "armada makes it 0600, owned by the service user", nullable=True, check=secret_path),
        Key(f"{service}_tls_ca_file", str, None, f"PEM CA FILE ON THE HOST that clients check a TLS {service}'s "
            f"certificate against {ca_note}", nullable=True, check=secret_path),
    )


def identifier(value: str) -> str | None:
    return None if re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value) else "must be a valid user/group name"


# -- the schema ----------------------------------------------------------------


def all_keys() -> dict[str, Key]:
    keys: dict[str, Key] = {}
    for module_name in ROLE_MODULES:
        for key in importlib.import_module(module_name).KEYS:
            if key.name in keys:
                raise RuntimeError(f"data key {key.name} declared twice ({module_name})")
            keys[key.name] = key
    return keys


def defaults() -> dict[str, Any]:
    return {name: key.default for name, key in all_keys().items()}


def with_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with the known keys of the given data."""
    merged = defaults()
    merged.update({k: v for k, v in data.items() if k in merged})
    return merged


def _is_pyinfra_key(name: str) -> bool:
    return name.startswith(PYINFRA_KEY_PREFIXES)


def cross_checks(host: str, data: Mapping[str, Any]) -> Iterable[DataError]:
    """Settings that are each valid but contradict one another."""
    strategy = data["vllm_strategy"]
    if strategy == "wheel" and not data["vllm_wheelhouse"]:
        yield DataError(host, "vllm_wheelhouse", None, "vllm_strategy 'wheel' needs a wheelhouse (folder or URL)")
    if strategy == "source" and re.match(r"^[a-z]+://", data["vllm_wheelhouse"] or ""):
        yield DataError(
            host, "vllm_wheelhouse", data["vllm_wheelhouse"], "vllm_strategy 'source' publishes its builds to a folder "
            "on the control machine; a URL is read-only here (serve that folder over HTTP to other fleets)"
        )
    spec = data["vllm_spec"]
    if spec:
        pinned = [s.version for s in Requirement(spec).specifier if s.operator in ("==", "===")]
        if pinned and pinned[0] != data["vllm_version"]:
            yield DataError(host, "vllm_spec", spec, f"pins {pinned[0]} but vllm_version is {data['vllm_version']!r}; "
                            "set both to the same release")
    roles = data["armada_roles"]
    yield from _port_clashes(host, data, roles)
    if "nats" in roles and data["nats_source"] == "release":
        for key in ("nats_release_url", "nats_release_sha256"):
            if not data[key]:
                yield DataError(host, key, None, f"nats_source 'release' needs {key} (the download is verified)")
    serves = "vllm_service" in roles
    if serves and data["armada_serving"] == "dynamo":
        yield from _dynamo_checks(host, data, roles)
    if serves and not {"vllm", "model"} <= set(roles):
        yield DataError(host, "armada_roles", roles, "vllm_service needs the vllm and model roles on the same host")
    if not serves and "model" not in roles:
        return  # no model needed on a host that does not serve
    if data["model_path"] and data["model_id"]:
        yield DataError(host, "model_path", data["model_path"], "set model_path (a local folder) or model_id (a hub id), not both")
    if not data["model_path"] and not data["model_id"]:
        yield DataError(host, "model_id", None, "no model: set model_path (a local folder) or model_id (a hub id)")


def dynamo_needs(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, service)`` for each control-plane service Dynamo's data needs, first key naming it (pure)."""
    needs: dict[str, str] = {}
    for key, service in (("dynamo_request_plane", "nats"), ("dynamo_event_plane", "nats"),
                         ("dynamo_discovery_backend", "etcd")):
        if data[key] == service and service not in needs:
            needs[service] = key
    return [(key, service) for service, key in needs.items()]


def _dynamo_checks(host: str, data: Mapping[str, Any], roles: list[str]) -> Iterable[DataError]:
    """Dynamo serving: a release armada knows, the vLLM it pins, nats and etcd where its planes need them."""
    from roles.dynamo.defaults import DYNAMO_VLLM

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
    local = not data["armada_control_plane"]
    for key, needed in dynamo_needs(data):
        if local and needed not in roles:
            yield DataError(host, key, needed, f"no {needed} host: add the {needed} role to this host or name "
                            "armada_control_plane (a host that runs it)")


def _port_clashes(host: str, data: Mapping[str, Any], roles: list[str]) -> Iterable[DataError]:
    """Two services of one host on one port: the second would never start."""
    used = {
        "nats": ("nats_port", "nats_monitor_port"),
        "etcd": ("etcd_client_port", "etcd_peer_port"),
        "vllm_service": ("dynamo_frontend_port",) if data["armada_serving"] == "dynamo" else ("vllm_port",),
    }
    seen: dict[int, str] = {}
    for role, keys in used.items():
        if role not in roles:
            continue
        for key in keys:
            port = data[key]
            if port in seen:
                yield DataError(host, key, port, f"the same port as {seen[port]} on this host")
            else:
                seen[port] = key


def validate_host_data(host: str, data: Mapping[str, Any], complete: bool = True) -> list[DataError]:
    """Every problem in one host's merged data (no host contact).

    ``complete=False`` checks only the keys given (for partial data, such as
    overrides to an offline profile), not what a deploy needs as a whole.
    """
    keys = all_keys()
    errors: list[DataError] = []
    for name, value in data.items():
        if name in keys:
            error = keys[name].validate(host, value)
            if error:
                errors.append(error)
        elif not _is_pyinfra_key(name):
            close = difflib.get_close_matches(name, keys, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append(DataError(host, name, value, f"unknown data key{hint}"))
    if not errors and complete:
        errors.extend(cross_checks(host, with_defaults(data)))
    return errors
