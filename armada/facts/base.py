"""What the facts share: several outputs printed by one command, each after a
marker line, split again by name; parse errors turned into pyinfra's."""

from __future__ import annotations

import shlex

from pyinfra.api.exceptions import FactProcessError

from armada.parsers import ParseError

_MARK = "@@armada-section "


def sections_command(commands: dict[str, str]) -> str:
    """One shell command printing each output after a marker line.

    A command that is missing or fails prints nothing in its section: an
    absent tool is an empty output, not an error.
    """
    parts = []
    for name, command in commands.items():
        parts.append(f"echo {shlex.quote(_MARK + name)}; ( {command} ) 2>/dev/null || true")
    return "; ".join(parts)


def split_sections(lines: list[str]) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith(_MARK):
            current = sections.setdefault(line[len(_MARK):].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(body) for name, body in sections.items()}


def _process(parse, *args):
    try:
        return parse(*args)
    except ParseError as exc:
        raise FactProcessError(str(exc)) from exc
