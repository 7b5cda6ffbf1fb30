"""Shell checks of a file ON THE HOST holding a secret (a password, a token)
or a TLS certificate or key: they say what the file is like, never what it
holds. Their one-word answers are read by :mod:`armada.parsers.secrets`."""

from __future__ import annotations

import shlex

# Characters a secret may hold: what `openssl rand -hex|-base64` and token
# generators produce. Anything else (quotes, spaces, backslashes) would have
# to be escaped on its way into JSON bodies and nats' config variable.
SECRET_CHARS = "A-Za-z0-9._~+/=:@-"


def _folders_let_through(f: str, user: str) -> str:
    """Shell that echoes ``closed-folder DIR MODE`` and exits when a folder above
    the (quoted) path ``f`` does not let ``user`` through."""
    return (
        f"d=$(dirname {f}); while :; do m=$(stat -c %a \"$d\"); o=$(stat -c %U \"$d\"); "
        f"case $m in *[1357]) ;; *) [ \"$o\" = {user} ] || {{ echo \"closed-folder $d $m\"; exit 0; }};; esac; "
        "[ \"$d\" = / ] && break; d=$(dirname \"$d\"); done; "
    )


def _plain_file_checks(f: str) -> str:
    """The start of an if-chain on the (quoted) path ``f``: it exists, is a
    regular file, readable, not empty."""
    return (f"if [ ! -e {f} ]; then echo missing; elif [ ! -f {f} ]; then echo not-a-file; "
            f"elif [ ! -r {f} ]; then echo unreadable; elif [ ! -s {f} ]; then echo empty; ")


def secret_file_command(path: str, service_user: str = "armada") -> str:
    """Shell that says what a secret file is like, never what it holds. The
    service user reads it (armada hands the file over): every folder above it
    must let that user through (searchable by others, or the user's own)."""
    f, user = shlex.quote(path), shlex.quote(service_user)
    return (
        _plain_file_checks(f) + f"elif [ \"$(grep -c '' {f})\" -gt 1 ]; then echo multiline; "
        f"elif LC_ALL=C grep -q '[^{SECRET_CHARS}]' {f}; then echo unsafe; else {_folders_let_through(f, user)}echo ok; fi"
    )


# what a TLS file of each kind must hold (its PEM block's first line)
PEM_KINDS = {"certificate": "-----BEGIN CERTIFICATE-----", "key": "-----BEGIN [A-Z ]*PRIVATE KEY-----"}


def pem_file_command(path: str, kind: str, service_user: str = "armada") -> str:
    """Shell that says whether a TLS file is usable (``kind``: 'certificate'
    or 'key'), never what it holds: a regular file the deploy user reads,
    holding a PEM block of that kind, below folders the service user passes."""
    f, user = shlex.quote(path), shlex.quote(service_user)
    return (
        _plain_file_checks(f) + f"elif ! grep -q -- {shlex.quote('^' + PEM_KINDS[kind] + '$')} {f}; then echo not-{kind}; "
        f"else {_folders_let_through(f, user)}echo ok; fi"
    )
