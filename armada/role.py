"""The role contract: what every role package declares, in one place.

A role (``roles/<name>/__init__.py``) ends with ``ROLE = Role(...)``:

- ``keys``: its data keys (``roles/<name>/defaults.py``: typed, with their
  defaults and what they are for);
- ``checks``: its cross-key checks on one host's complete data (pure,
  offline: ``armada check``), ``fleet_checks`` those across hosts;
- ``preflight``: checks that need the host's facts (its profile) or read the
  host, run while pyinfra plans, before any host changes;
- ``urls``: the URLs it will fetch from, asked from the host before any change;
- ``apply``: its operations (a pyinfra ``@deploy`` taking a :class:`RoleRun`);
- ``health``: its read-only health checks after the run (a :class:`RoleRun`
  in, :class:`armada.health.Check` out).

:mod:`armada.registry` lists the roles in deploy order; the deploy, the
schema, ``armada keys``/``check`` and the health phase iterate over it and
never name a role. This module is below every role: it imports no role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from armada.errors import DataError
from armada.keys import Key
from armada.profile import Profile


@dataclass(frozen=True)
class RoleRun:
    """What a role's operations and health checks are given: the host, its
    inventory, its profile, its data (every key's default filled in), and the
    control plane it uses (itself by default) with that host's data."""

    host: Any  # pyinfra Host
    inventory: Any  # pyinfra Inventory
    profile: Profile
    data: Mapping[str, Any]
    control_plane: Any  # pyinfra Host
    cp_data: Mapping[str, Any]
    keys: Mapping[str, Key] = field(default_factory=dict)  # every role's keys (the registry's)
    # another host's data and profile, for decisions across the fleet (the
    # source strategy's one builder per build key)
    data_of: Callable[[Any], Mapping[str, Any]] | None = None
    profile_of: Callable[[Any], Profile] | None = None
    # an upgrade's first phase (deploys/upgrade.py): build beside what serves, change nothing that
    # takes a host down (no flip, no driver change and its reboot: the batches do those, health-gated)
    build_only: bool = False


@dataclass(frozen=True)
class Fleet:
    """Every host of an inventory with its complete data, and the groups (for checks across hosts)."""

    hosts: tuple[tuple[str, Mapping[str, Any]], ...]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def data(self, name: str) -> Mapping[str, Any] | None:
        return next((data for host, data in self.hosts if host == name), None)

    def control_plane(self, name: str, data: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
        """``(name, data)`` of the other host whose nats and etcd this host uses; None for itself."""
        other = data["armada_control_plane"]
        if not other or other == name or self.data(other) is None:
            return None
        return other, self.data(other)


HostChecks = Callable[[str, Mapping[str, Any]], Iterable[DataError]]


@dataclass(frozen=True)
class Role:
    name: str
    doc: str
    keys: tuple[Key, ...] = ()
    checks: HostChecks | None = None
    # errors across hosts (run once every host's own data is good)
    fleet_checks: Callable[[Fleet], Iterable[DataError]] | None = None
    preflight: Callable[[RoleRun], Iterable[DataError]] | None = None
    urls: Callable[[Mapping[str, Any], Profile], list[tuple[str, str]]] | None = None
    apply: Callable[[RoleRun], None] | None = None
    health: Callable[[RoleRun], list] | None = None
    # whether a host runs it; default: the role is named in armada_roles
    selected: Callable[[Mapping[str, Any]], bool] | None = None
    # whether data may name it in armada_roles (a role chosen by other data is not)
    listed: bool = True
    # whether armada_roles' default holds it (an opt-in role, such as monitoring, is named on purpose)
    by_default: bool = True
    # the role that flips what serves: left out of an upgrade's build phase
    serves: bool = False
    # keys naming the ports its services bind on the host (two on one port are refused)
    binds: tuple[str, ...] = ()

    def runs_on(self, data: Mapping[str, Any]) -> bool:
        if self.selected is not None:
            return self.selected(data)
        return self.name in data["armada_roles"]
