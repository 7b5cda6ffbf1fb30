"""Loading an inventory the way pyinfra's CLI does, and checking its data.

Nothing here connects to a host: ``armada check`` and the start of every
deploy run the same :func:`validate_inventory`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml
from pyinfra.api import Inventory

from armada import registry
from armada.errors import DataError
from armada.role import Fleet
from armada.schema import validate_host_data, with_defaults

# Groups pyinfra makes itself: not worth a summary line.
_IMPLICIT_GROUPS = ("all",)


def load_inventory(path: str) -> Inventory:
    """An inventory file (with group_data/ beside it or in the cwd), as the CLI loads it."""
    # pyinfra's CLI package monkey-patches the stdlib with gevent when first
    # imported: only when an inventory is loaded, never as a side effect of
    # importing armada (its tests patch first, as the pyinfra command does)
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    if not os.path.exists(path) and "@" not in path and "," not in path:
        raise FileNotFoundError(f"inventory {path!r} not found")
    # pyinfra executes inventory and group_data files inside a state context
    with ctx_state.use(State(check_for_changes=False)):
        try:
            return make_inventory(path, cwd=os.getcwd())
        except (TypeError, ValueError):
            # pyinfra's own error names no host: name the one whose data is not a mapping
            problem = _data_not_a_mapping(path) if os.path.isfile(path) else None
            if problem:
                raise problem from None
            raise


def _data_not_a_mapping(path: str) -> DataError | None:
    """The first host (or group) of an inventory file whose data is not a dict."""
    from pyinfra_cli.inventory import _get_groups_from_filename

    try:
        groups = _get_groups_from_filename(path)
    except Exception:
        return None
    for group, members in groups.items():
        if isinstance(members, tuple) and len(members) == 2:
            members, data = members
            if not isinstance(data, dict):
                return DataError(f"group {group}", "(group data)", data, "must map key names to values (a dict)")
        for member in members if isinstance(members, (list, tuple)) else ():
            if isinstance(member, tuple) and len(member) == 2 and not isinstance(member[1], dict):
                return DataError(str(member[0]), "(host data)", member[1], "must map key names to values (a dict)")
    return None


class DataFileError(ValueError):
    """A YAML or JSON data file that does not parse, naming file, line and column."""


def load_data(path: str) -> dict[str, Any]:
    """Data kept in a YAML or JSON file, for use in an inventory (as Ansible's
    group_vars): ``graviton = (hosts, load_data("group_vars/graviton.yaml"))``.

    Raises :class:`DataFileError` naming the file, line and column of a
    syntax error, or saying that the top level is not a mapping.
    """


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
    """Every data error of an inventory, found offline: each host's own data
    (keys, values, every role's checks), pyinfra's host key checking, then,
    once every host's data is good, every role's checks across hosts."""
    errors: list[DataError] = []
    for host in inventory:
        data = host_data(host)
        host_errors = validate_host_data(host.name, data)
        checking = data.get("ssh_strict_host_key_checking")
        if not host_errors and str(checking).lower() in ("no", "off", "false") and not data.get(
            "armada_allow_unverified_ssh"
        ):
            host_errors.append(DataError(
                host.name, "ssh_strict_host_key_checking", checking,
                "host keys unchecked: anyone on the path can impersonate the host; use 'yes' with known_hosts, "
                "or pyinfra's default 'accept-new', or set armada_allow_unverified_ssh: true (throwaway labs only)",
            ))
        errors.extend(host_errors)
    if not errors:
        fleet = Fleet(tuple((host.name, with_defaults(host_data(host))) for host in inventory),
                      {name: tuple(h.name for h in hosts) for name, hosts in inventory.groups.items()})
        for one in registry.roles():
            if one.fleet_checks is not None:
                errors.extend(one.fleet_checks(fleet))
    return errors


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
