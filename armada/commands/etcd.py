"""etcd's v3 JSON API through curl on a host: the curl, the login body (the
password read on the host, never on a command line) and enabling auth."""

from __future__ import annotations

import shlex

ETCD_CURL = "curl -sS --max-time 20 --noproxy '*' -X POST"


def etcd_curl(ca_file: str | None = None) -> str:
    """curl for etcd's v3 JSON API; over https it checks etcd's certificate
    against ``ca_file``."""
    return ETCD_CURL + (f" --cacert {shlex.quote(ca_file)}" if ca_file else "")


def etcd_login_body(password_file: str, user: str = "root") -> str:
    """Shell that prints etcd's JSON login body for ``user`` with the password in
    ``password_file``, for a pipe into ``curl -d @-``: printf is a shell
    builtin, so the password is in no process's argv."""
    return f"printf '{{\"name\":\"{user}\",\"password\":\"%s\"}}' \"$(cat {shlex.quote(password_file)})\""


def etcd_enable_auth_script(endpoint: str, password_file: str, user: str = "root", ca_file: str | None = None) -> str:
    """bash that creates etcd's root user with the password in ``password_file``
    (read on the host, sent in the request body through curl's stdin: never on
    a command line), grants it the root role and enables auth. Idempotent:
    an existing user is kept. Exit 0 only when auth ends up enabled."""
    base = endpoint.rstrip("/")
    curl = etcd_curl(ca_file)
    cacert = f" --cacert {shlex.quote(ca_file)}" if ca_file else ""
    return "\n".join([
        f"for i in $(seq 60); do curl -sf --noproxy '*'{cacert} {shlex.quote(base + '/health')} >/dev/null && break; sleep 1; done",
        f"state=$({curl} -d '{{\"key\":\"YQ==\"}}' {shlex.quote(base + '/v3/kv/range')})",
        'case "$state" in *"user name is empty"*) echo "etcd auth already enabled"; exit 0;; esac',
        f"{etcd_login_body(password_file, user)} | {curl} -d @- {shlex.quote(base + '/v3/auth/user/add')}; echo",
        f"{curl} -d '{{\"user\":\"{user}\",\"role\":\"root\"}}' {shlex.quote(base + '/v3/auth/user/grant')}; echo",
        f"out=$({curl} -d '{{}}' {shlex.quote(base + '/v3/auth/enable')}); echo \"$out\"",
        'case "$out" in *error*) exit 1;; esac',
    ])
