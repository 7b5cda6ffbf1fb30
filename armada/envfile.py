"""Env files read as data, never sourced by a shell.

:func:`parse` reads ``KEY=VALUE`` lines the way systemd's EnvironmentFile=
does for the values armada writes (:func:`armada.keys.systemd_env_value`):
plain, or in double quotes with backslash escapes, or in single quotes.
It is self-contained (no imports): the model role ships its source to the
host, where the serving venv's Python reads egress.env with it.
"""


def parse(text):
    """``{name: value}`` of an env file's text; comments and blank lines skipped."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        name, value = line.split("=", 1)
        name, value = name.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            out, chars = [], iter(value[1:-1])
            for char in chars:
                out.append(next(chars, "") if char == "\\" else char)
            value = "".join(out)
        else:
            out, chars = [], iter(value)
            for char in chars:
                out.append(next(chars, "") if char == "\\" else char)
            value = "".join(out)
        env[name] = value
    return env
