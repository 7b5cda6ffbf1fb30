"""One schema for group and host data, gathered from the registry.

Each role declares its keys (``roles/<role>/defaults.py``, :class:`armada.keys.Key`)
and its cross-key checks in its contract (:mod:`armada.role`); this module
gathers them through :mod:`armada.registry`, applies defaults and checks a
host's data: wrong types, unknown keys (with a "did you mean"), impossible
values, and every role's checks of settings that contradict each other.
Every problem is reported with host, key and value. It names no role.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from armada import registry
from armada.errors import DataError
from armada.keys import CERTIFICATE, PRIVATE_KEY, SECRET, Key, file_owner, port

# Keys that belong to pyinfra itself (connectors, global operation arguments).
PYINFRA_KEY_PREFIXES = ("ssh_", "winrm_", "docker_", "dockerssh_", "chroot_", "local_", "terraform_", "_")
# pyinfra's own keys armada checks too (its connectors fail late, or not at all, on these)
PYINFRA_KEYS = {
    key.name: key for key in (
        Key("ssh_port", int, 22, "SSH port of the host", check=port),
        Key("ssh_hostname", str, None, "Address pyinfra connects to", nullable=True),
        Key("ssh_user", str, None, "SSH user", nullable=True),
    )
}


def all_keys() -> dict[str, Key]:
    keys: dict[str, Key] = {}
    for owner, key in registry.keys_by_role():
        if key.name in keys:
            raise RuntimeError(f"data key {key.name} declared twice ({owner})")
        keys[key.name] = key
    return keys


def file_keys(*holds: str) -> list[Key]:
    """The keys naming a file on the host that holds one of ``holds`` (keys.SECRET, CERTIFICATE, PRIVATE_KEY)."""
    return [key for key in all_keys().values() if key.holds in holds]


def secret_file_keys() -> list[str]:
    """Keys naming a secret file on the host (passwords, tokens, API keys): 0600 for the service user."""
    return [key.name for key in file_keys(SECRET)]


def tls_file_keys() -> dict[str, str]:
    """TLS file keys, by the PEM kind each file must hold ('certificate' or 'key')."""
    return {key.name: key.holds for key in file_keys(CERTIFICATE, PRIVATE_KEY)}


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
    """Settings that are each valid but contradict one another: every role's
    checks, then two services of one host on one port."""
    for one in registry.roles():
        if one.checks is not None:
            yield from one.checks(host, data)
    yield from _port_clashes(host, data)
    yield from _shared_private_files(host, data)


def _shared_private_files(host: str, data: Mapping[str, Any]) -> Iterable[DataError]:
    """One secret or key file for two services of different users: armada gives
    each file to one user (least privilege), so each service needs its own copy."""
    keys = all_keys()
    owners: dict[str, tuple[str, str]] = {}
    for key in keys.values():
        if key.holds in (SECRET, PRIVATE_KEY) and data.get(key.name):
            owner = file_owner(key, keys, data)
            first = owners.setdefault(data[key.name], (key.name, owner))
            if first[1] != owner:
                yield DataError(host, key.name, data[key.name], f"is also {first[0]}, a file owned by {first[1]}: "
                                f"this one is {owner}'s; give each service its own copy of the file")


def _port_clashes(host: str, data: Mapping[str, Any]) -> Iterable[DataError]:
    """Two services of one host on one port: the second would never start."""
    seen: dict[int, str] = {}
    for one in registry.selected(data):
        for key in one.binds:
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
        elif name in PYINFRA_KEYS:
            error = PYINFRA_KEYS[name].validate(host, value)
            if error:
                errors.append(error)
        elif not _is_pyinfra_key(name):
            close = difflib.get_close_matches(name, keys, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append(DataError(host, name, value, f"unknown data key{hint}"))
    if not errors and complete:
        errors.extend(cross_checks(host, with_defaults(data)))
    return errors
