"""etcd's v3 JSON API through curl on a host: the curl, the login body (the
password read on the host, never on a command line) and enabling auth."""

from __future__ import annotations

import base64
import json
import shlex
from typing import NamedTuple

ETCD_CURL = "curl -sS --max-time 20 --noproxy '*' -X POST"


class TlsFiles(NamedTuple):
    """How curl on a host speaks to an etcd over https: the CA file its certificate is checked against and,
    for an etcd that asks every client for a certificate (etcd_client_cert_auth), the client certificate
    and key files (on the host) curl presents."""

    ca: str
    cert: str | None = None
    key: str | None = None

    def curl_args(self) -> str:
        args = f" --cacert {shlex.quote(self.ca)}"
        if self.cert and self.key:
            args += f" --cert {shlex.quote(self.cert)} --key {shlex.quote(self.key)}"
        return args


def tls_args(tls: TlsFiles | None) -> str:
    """curl's TLS arguments for ``tls`` (none over plain http)."""
    return tls.curl_args() if tls else ""


def etcd_curl(tls: TlsFiles | None = None) -> str:
    """curl for etcd's v3 JSON API; over https it checks etcd's certificate
    against ``tls.ca`` (and presents ``tls``' client certificate)."""
    return ETCD_CURL + tls_args(tls)


def etcd_login_body(password_file: str, user: str = "root") -> str:
    """Shell that prints etcd's JSON login body for ``user`` with the password in
    ``password_file``, for a pipe into ``curl -d @-``: printf is a shell
    builtin, so the password is in no process's argv."""
    return f"printf '{{\"name\":\"{user}\",\"password\":\"%s\"}}' \"$(cat {shlex.quote(password_file)})\""


def _fail_closed(base: str, tls: TlsFiles | None, wait_s: int) -> list[str]:
    """The start of every auth script: stop with the reason (exit 1) as soon
    as a step fails, and wait for etcd to answer /health first."""
    return [
        "fail() { echo \"armada: $*\" >&2; exit 1; }",
        # an etcd v3 JSON reply that succeeded carries a header; errors carry "error"
        "answered() { case \"$1\" in *'\"header\"'*) return 0;; esac; return 1; }",
        f"for i in $(seq {wait_s}); do curl -sf --noproxy '*'{tls_args(tls)} {shlex.quote(base + '/health')} >/dev/null "
        f"&& break; [ $i = {wait_s} ] && fail 'etcd at {base} did not answer /health within {wait_s} s'; sleep 1; done",
    ]


def _root_token(base: str, curl: str, password_file: str) -> list[str]:
    """Log in as root into $token, or fail naming the password file."""
    return [
        f"token=$({etcd_login_body(password_file)} | {curl} -d @- {shlex.quote(base + '/v3/auth/authenticate')} "
        "| sed -n 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/p')",
        f"[ -n \"$token\" ] || fail {shlex.quote(f'etcd refused root with the password in {password_file}')}",
    ]


def etcd_enable_auth_script(endpoint: str, password_file: str, user: str = "root", tls: TlsFiles | None = None,
                            wait_s: int = 60) -> str:
    """bash that creates etcd's root user with the password in ``password_file``
    (read on the host, sent in the request body through curl's stdin: never on
    a command line), grants it the root role and enables auth. Idempotent:
    an existing user is kept. Fails closed: exit 0 only when auth ends up
    enabled and root logs in with that password; any other step's failure
    (etcd not answering, a refused request) stops with the reason, exit 1."""
    base = endpoint.rstrip("/")
    curl = etcd_curl(tls)
    return "\n".join([
        *_fail_closed(base, tls, wait_s),
        f"state=$({curl} -d '{{\"key\":\"YQ==\"}}' {shlex.quote(base + '/v3/kv/range')}) || fail \"etcd: $state\"",
        'case "$state" in *"user name is empty"*) echo "etcd auth already enabled"; exit 0;; esac',
        'answered "$state" || fail "etcd answered a read with: $state"',
        f"out=$({etcd_login_body(password_file, user)} | {curl} -d @- {shlex.quote(base + '/v3/auth/user/add')}) "
        '|| fail "etcd user add: $out"',
        'answered "$out" || case "$out" in *"already exists"*) ;; *) fail "etcd user add: $out";; esac',
        f"out=$({curl} -d '{{\"user\":\"{user}\",\"role\":\"root\"}}' {shlex.quote(base + '/v3/auth/user/grant')}) "
        '&& answered "$out" || fail "etcd grant root: $out"',
        f"out=$({curl} -d '{{}}' {shlex.quote(base + '/v3/auth/enable')}) && answered \"$out\" "
        '|| fail "etcd auth enable: $out"',
        # auth is on only if anonymous reads are now refused and root gets in with the file's password
        f"state=$({curl} -d '{{\"key\":\"YQ==\"}}' {shlex.quote(base + '/v3/kv/range')})",
        'case "$state" in *"user name is empty"*) ;; *) fail "etcd still answers anonymous reads: $state";; esac',
        *_root_token(base, curl, password_file),
        'echo "etcd auth enabled"',
    ])


def etcd_client_user_script(endpoint: str, root_password_file: str, user: str, password_file: str, prefix: str,
                            tls: TlsFiles | None = None, wait_s: int = 60) -> str:
    """bash that (as root, logged in with ``root_password_file``) makes etcd's
    ``user`` with the password in ``password_file`` and a role of the same
    name granted readwrite on keys under ``prefix`` only, then checks that
    the user logs in. Idempotent (an existing role, grant or user is kept, the
    password set again); fails closed like :func:`etcd_enable_auth_script`."""
    base = endpoint.rstrip("/")
    curl = etcd_curl(tls)
    key = base64.b64encode(prefix.encode()).decode()
    # a prefix range ends at the prefix with its last byte incremented (etcd's --prefix)
    range_end = base64.b64encode(prefix[:-1].encode() + bytes([ord(prefix[-1]) + 1])).decode()
    auth = f"{curl} -H \"Authorization: $token\""
    grant = json.dumps({"name": user, "perm": {"permType": "READWRITE", "key": key, "range_end": range_end}})
    return "\n".join([
        *_fail_closed(base, tls, wait_s),
        *_root_token(base, curl, root_password_file),
        f"out=$({auth} -d {shlex.quote(json.dumps({'name': user}))} {shlex.quote(base + '/v3/auth/role/add')}) "
        '|| fail "etcd role add: $out"',
        'answered "$out" || case "$out" in *"already exists"*) ;; *) fail "etcd role add: $out";; esac',
        f"out=$({auth} -d {shlex.quote(grant)} {shlex.quote(base + '/v3/auth/role/grant')}) && answered \"$out\" "
        '|| fail "etcd role grant: $out"',
        f"out=$({etcd_login_body(password_file, user)} | {auth} -d @- {shlex.quote(base + '/v3/auth/user/add')}) "
        '|| fail "etcd user add: $out"',
        'if ! answered "$out"; then case "$out" in *"already exists"*) '
        f"out=$({etcd_login_body(password_file, user)} | {auth} -d @- {shlex.quote(base + '/v3/auth/user/changepw')}) "
        '&& answered "$out" || fail "etcd user password: $out";; *) fail "etcd user add: $out";; esac; fi',
        f"out=$({auth} -d {shlex.quote(json.dumps({'user': user, 'role': user}))} "
        f"{shlex.quote(base + '/v3/auth/user/grant')}) && answered \"$out\" || fail \"etcd user grant: $out\"",
        f"t=$({etcd_login_body(password_file, user)} | {curl} -d @- {shlex.quote(base + '/v3/auth/authenticate')})",
        f"case \"$t\" in *'\"token\"'*) ;; *) fail \"etcd refused {user} after it was set up: $t\";; esac",
        f'echo "etcd user {user}: readwrite on {prefix} only"',
    ])
