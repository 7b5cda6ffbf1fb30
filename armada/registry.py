"""The one registry of roles, in deploy order.

Adding a role: its package under ``roles/`` ends with ``ROLE = Role(...)``
(:mod:`armada.role` says what it declares), and one line here. The deploy,
the schema, ``armada keys``, ``armada check`` and the health phase iterate
over :func:`roles`; none of them names a role.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from armada.keys import Key
from armada.role import Role
from roles import (base, dcgm_exporter, dynamo, etcd, model, monitoring, nats, node_exporter, nvidia, tcmalloc, vllm,
                   vllm_service)

_ROLES: list[Role] = [
    base.ROLE,
    nvidia.ROLE,
    tcmalloc.ROLE,
    nats.ROLE,
    etcd.ROLE,
    vllm.ROLE,
    model.ROLE,
    vllm_service.ROLE,
    dynamo.ROLE,  # serves in vllm_service's place when armada_serving is 'dynamo'
    node_exporter.ROLE,
    dcgm_exporter.ROLE,  # after node_exporter: writes the GPU count into its textfile folder
    monitoring.ROLE,  # last: it scrapes what the roles above set up
]


def roles() -> tuple[Role, ...]:
    """Every role, in deploy order."""
    return tuple(_ROLES)


def role(name: str) -> Role:
    for candidate in _ROLES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no role {name!r}; known: {', '.join(r.name for r in _ROLES)}")


def listed_names() -> tuple[str, ...]:
    """The role names data may put in armada_roles, in deploy order."""
    return tuple(r.name for r in _ROLES if r.listed)


def register(new: Role, before: str | None = None) -> None:
    """Add a role (an extension's, a test's) before ``before`` (default: last)."""
    if any(r.name == new.name for r in _ROLES):
        raise ValueError(f"role {new.name!r} is registered already")
    index = len(_ROLES) if before is None else [r.name for r in _ROLES].index(before)
    _ROLES.insert(index, new)


def unregister(name: str) -> None:
    _ROLES.remove(role(name))


def selected(data: Mapping[str, Any]) -> list[Role]:
    """The roles a host with this (complete) data runs, in deploy order."""
    return [r for r in _ROLES if r.runs_on(data)]


def identity(one: Role) -> int:
    """A role's fixed place (the same on every host): it joins its operations'
    identity (see armada.deploy.apply_roles)."""
    return _ROLES.index(one)


def _role_names(value) -> str | None:
    if not all(isinstance(v, str) for v in value):
        return "must be a list of role names"
    if len(set(value)) != len(value):
        return "names a role twice"
    unknown = [v for v in value if v not in listed_names()]
    if unknown:
        return f"unknown role(s) {', '.join(unknown)}; known: {', '.join(listed_names())}"
    return None


def composition_key() -> Key:
    """``armada_roles``: which roles a host runs (the registry's own key)."""
    names = listed_names()
    default = [r.name for r in _ROLES if r.listed and r.by_default]
    opt_in = [name for name in names if name not in default]
    return Key("armada_roles", list, default, "Roles this host runs, in deploy order (a subset of "
               + ", ".join(names) + ")" + (f"; {', '.join(opt_in)} only when named" if opt_in else ""),
               check=_role_names)


def keys_by_role() -> list[tuple[str, Key]]:
    """``(owner, key)`` for every data key: the registry's own (``armada_roles``) first, then each role's."""
    rows = [("registry", composition_key())]
    for one in _ROLES:
        rows.extend((one.name, key) for key in one.keys)
    return rows
