"""Offline operation tests in pyinfra's style: a role's operations planned
against facts from fixtures, no host contacted.

``plan(role, data, facts)`` builds a one-host pyinfra inventory and state,
answers every ``host.get_fact`` from ``facts`` (a fact class -> its value,
or a function of the fact's arguments) and, for any fact not given, with the
fact's own default (pyinfra's "not there": no file, no package, no unit:
a bare host). Then it runs the role's ``apply`` as pyinfra plans a deploy
and executes the plan on paper (every command taken as succeeded, an
operation's ``_if`` evaluated as pyinfra does), returning each operation
with the commands pyinfra would run:
shell commands as text, uploads as ``upload <dest>``, Python calls as
``call <function>``.

The host's profile comes from a real machine's snapshot
(tests/fixtures/hosts/<name>), like the other unit tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pyinfra
from conftest import host_dir
from pyinfra.api import Config, Inventory, State
from pyinfra.api.command import FileUploadCommand, FunctionCommand, StringCommand
from pyinfra.api.state import StateStage
from pyinfra.connectors.util import CommandOutput
from pyinfra.context import ctx_host, ctx_state

from armada.parsers.host import host_facts_from_outputs
from armada.profile import build_profile
from armada.role import Role, RoleRun
from armada.schema import all_keys, with_defaults
from armada.serving import model_bytes
from armada.snapshot import read_snapshot


@dataclass(frozen=True)
class Op:
    name: str
    commands: tuple[str, ...]
    raw: tuple = field(default=(), repr=False, compare=False)  # pyinfra's command objects
    serial: bool = False  # pyinfra's _serial: hosts one after another

    def runs(self, fragment: str) -> bool:
        return any(fragment in command for command in self.commands)


class Plan(list):
    """The planned operations, in order."""

    def names(self) -> list[str]:
        return [op.name for op in self]

    def op(self, name: str) -> Op:
        found = [op for op in self if op.name == name]
        assert found, f"no operation {name!r} planned; planned: {self.names()}"
        return found[0]

    def changing(self) -> list[str]:
        """Operations with at least one command (pyinfra's 'would change')."""
        return [op.name for op in self if op.commands]


FactValues = Mapping[type, Any]


def _text(command) -> str:
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FileUploadCommand):
        return f"upload {command.dest}"
    if isinstance(command, FunctionCommand):
        return f"call {getattr(command.function, '__name__', command.function)}"
    return str(command)


def _answer(facts: FactValues, asked: list):
    def get_fact(state, host, cls, args=None, kwargs=None, **_):
        asked.append(cls)
        if cls in facts:
            value = facts[cls]
            return value(**(kwargs or {})) if callable(value) and not isinstance(value, type) else value
        fact = cls()
        return fact.default() if hasattr(fact, "default") else None

    return get_fact


def bare_host(snapshot: str) -> dict[type, Any]:
    """What a fresh Debian host answers beyond 'nothing there': its users and
    groups (root's), its OS, and armada's host facts, from the real machine's snapshot."""
    from pyinfra.facts.server import Groups, LinuxName, Os, Users, Which

    from armada.facts.host import HostSnapshot
    from armada.facts.system import Accounts, OsRelease

    facts = host_facts_from_outputs(read_snapshot(host_dir(snapshot)))
    return {
        OsRelease: facts.os,
        Os: "Linux",
        LinuxName: "Debian",
        Which: lambda command, **_: f"/usr/sbin/{command}",
        Groups: {"root"},
        Users: {"root": {"home": "/root", "shell": "/bin/bash", "group": "root", "groups": [], "uid": 0}},
        Accounts: lambda names, **_: {name: None for name in names},
        HostSnapshot: facts,
    }


def profile_of(snapshot: str, data: Mapping[str, Any], host_name: str = "h1"):
    facts = host_facts_from_outputs(read_snapshot(host_dir(snapshot)))
    return build_profile(host_name, facts, data, model_bytes(data))


def plan(role: Role, data: Mapping[str, Any], facts: FactValues | None = None, snapshot: str = "x86-lab-vm",
         host_name: str = "h1", apply: Callable | None = None, build_only: bool = False) -> Plan:
    """The operations ``role`` plans on a host with ``data`` and ``facts`` (see the module docstring).
    ``apply``: another deploy function of the role (a rollback) instead of ``role.apply``."""
    complete = with_defaults(data)
    inventory = Inventory(([(host_name, dict(data))], {}))
    state = State(inventory, Config())
    state.current_stage = StateStage.Prepare
    host = inventory.get_host(host_name)
    profile = profile_of(snapshot, complete, host_name)
    run = RoleRun(host=host, inventory=inventory, profile=profile, data=complete, control_plane=host,
                  cp_data=complete, keys=all_keys(), data_of=lambda h: with_defaults(h.data.dict()),
                  profile_of=lambda h: profile, build_only=build_only)
    asked: list = []
    answers = {**bare_host(snapshot), **(facts or {})}
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("pyinfra.api.host.get_fact", _answer(answers, asked)))
        stack.enter_context(mock.patch.object(pyinfra, "is_cli", False))
        stack.enter_context(ctx_state.use(state))
        stack.enter_context(ctx_host.use(host))
        (apply or role.apply)(run)
        # then as pyinfra executes them, in order, every command taken as
        # succeeded: an operation whose _if (any_changed of earlier ones) is
        # false runs nothing
        planned = Plan()
        for op_hash in state.get_op_order():
            meta = state.get_op_meta(op_hash)
            op_data = state.get_op_data_for_host(host, op_hash)
            conditions = op_data.global_arguments.get("_if") or []
            conditions = conditions if isinstance(conditions, list) else [conditions]
            raw = tuple(op_data.command_generator()) if all(c() for c in conditions) else ()
            op_data.operation_meta.set_complete(True, list(raw), CommandOutput([]))
            name = ", ".join(sorted(n.rsplit(" | ", 1)[-1] for n in meta.names))
            planned.append(Op(name, tuple(_text(c) for c in raw), raw, bool(meta.global_arguments.get("_serial"))))
    return planned


# -- the host after a run -------------------------------------------------------


def after(planned: Plan) -> dict[type, Any]:
    """Facts of the host as the planned commands leave it (directories, files
    with their content, modes and owners, links, packages, running and enabled
    units), so that planning again shows what a rerun would do. The commands
    this reads are pyinfra's own (mkdir, chmod, chown, upload, ln, apt-get
    install, systemctl); armada's facts are the caller's to give."""
    import hashlib
    import re as re_

    from pyinfra.facts.deb import DebPackages
    from pyinfra.facts.files import Directory, File, Link, Sha1File
    from pyinfra.facts.server import Date, Groups, Users

    from armada.facts.system import Accounts
    from armada.parsers.system import Account
    from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

    dirs, files, links, attrs, packages, running, enabled = set(), {}, {}, {}, set(), set(), set()
    users, groups, apt_updated = {}, set(), False
    for op in planned:
        for text, raw in zip(op.commands, op.raw):
            if isinstance(raw, FileUploadCommand):
                src = raw.src
                data = src.getvalue() if hasattr(src, "getvalue") else open(src, "rb").read()
                data = data.encode() if isinstance(data, str) else data
                files[raw.dest] = hashlib.sha1(data).hexdigest()
            elif m := re_.fullmatch(r"mkdir -p (\S+)", text):
                dirs.add(m.group(1))
            elif m := re_.fullmatch(r"chmod (?:-R )?(\d+) (\S+)", text):
                attrs.setdefault(m.group(2), {})["mode"] = int(m.group(1))
            elif m := re_.fullmatch(r"chown (?:-R )?([\w-]+):([\w-]+) (\S+)", text):
                attrs.setdefault(m.group(3), {}).update(user=m.group(1), group=m.group(2))
            elif m := re_.fullmatch(r"ln -s (\S+) (\S+)", text):
                links[m.group(2)] = m.group(1)
            elif " install " in text and "apt-get" in text:
                packages.update(word for word in text.split(" install ", 1)[1].split() if not word.startswith("-"))
            elif m := re_.fullmatch(r"systemctl (start|enable) (\S+)", text):
                (running if m.group(1) == "start" else enabled).add(m.group(2))
            elif m := re_.fullmatch(r"groupadd .*?(\S+)", text):
                groups.add(m.group(1))
            elif text.startswith("useradd "):
                words = text.split()
                option = {words[i]: words[i + 1] for i in range(1, len(words) - 1) if words[i].startswith("-")}
                users[words[-1]] = {"home": option.get("-d"), "shell": option.get("-s"), "group": option.get("-g"),
                                    "groups": [], "comment": None, "uid": None}
            elif m := re_.fullmatch(r"python3 -m venv (\S+)", text):
                dirs.add(m.group(1))
                for name in ("activate", "python", "pip"):
                    files[f"{m.group(1)}/bin/{name}"] = hashlib.sha1(name.encode()).hexdigest()
            elif text == "apt-get update":
                apt_updated = True
            elif m := re_.fullmatch(r"touch (\S+)", text):
                files.setdefault(m.group(1), hashlib.sha1(b"").hexdigest())

    def described(path, **extra):
        return {"mode": 644, "user": "root", "group": "root", **attrs.get(path, {}), **extra}

    import datetime

    now = datetime.datetime.now()
    stamp = "/var/lib/apt/periodic/update-success-stamp"
    return {
        Groups: {"root", *groups},
        Users: {"root": {"home": "/root", "shell": "/bin/bash", "group": "root", "groups": [], "uid": 0}, **users},
        # what getent answers for the accounts the commands made (system ids as useradd -r picks them)
        Accounts: lambda names, **_: {name: Account(name, 900 + i, 900 + i, users[name]["home"] or "/nonexistent",
                                                    users[name]["shell"], 900 + i if users[name]["group"] in groups
                                                    else None) if name in users else None
                                      for i, name in enumerate(names)},
        Date: now,
        Directory: lambda path, **_: described(path) if path in dirs else None,
        File: lambda path, **_: (described(path, size=1, mtime=now) if path in files else
                                 {"mtime": now, "size": 0} if path == stamp and apt_updated else None),
        Sha1File: lambda path, **_: files.get(path),
        Link: lambda path, **_: described(path, link_target=links[path]) if path in links else None,
        DebPackages: {name: ["1"] for name in packages},
        SystemdStatus: lambda services=None, **_: {s: s in running for s in services or []},
        SystemdEnabled: lambda services=None, **_: {s: s in enabled for s in services or []},
    }


def with_files(facts: dict[type, Any], contents: Mapping[str, bytes]) -> dict[type, Any]:
    """``facts`` (from :func:`after`) plus files a command wrote without pyinfra
    seeing their content (a shell redirect, a package's own files): path -> content."""
    import hashlib

    from pyinfra.facts.files import File, Sha1File

    file, sha1 = facts[File], facts[Sha1File]
    return {
        **facts,
        File: lambda path, **kw: {"mode": 644, "user": "root", "group": "root", "size": len(contents[path])}
        if path in contents else file(path, **kw),
        Sha1File: lambda path, **kw: hashlib.sha1(contents[path]).hexdigest() if path in contents else sha1(path, **kw),
    }
