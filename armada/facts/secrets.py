"""Secret and TLS files on the host (whether usable, never what they hold), and etcd's auth state."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from armada.commands.etcd import TlsFiles, etcd_curl, etcd_login_body
from armada.commands.secrets import pem_file_command, secret_file_command
from armada.parsers.secrets import etcd_auth_state, secret_file_problem


class SecretFile(FactBase):
    """Whether a secret file on the host is usable: a problem sentence or None
    (see armada.parsers.secrets.secret_file_problem). The secret itself never leaves the host."""

    def command(self, path: str, service_user: str = "armada"):
        return secret_file_command(path, service_user)

    def process(self, output):
        return secret_file_problem("\n".join(output))


class PemFile(FactBase):
    """Whether a TLS file on the host is usable: a problem sentence or None
    (see armada.commands.secrets.pem_file_command). Nothing of the file leaves the host."""

    def command(self, path: str, kind: str, service_user: str = "armada"):
        return pem_file_command(path, kind, service_user)

    def process(self, output):
        return secret_file_problem("\n".join(output))


class EtcdLogin(FactBase):
    """Whether ``user`` logs in to the etcd at ``endpoint`` with the password in
    ``password_file`` (read on the host, sent through curl's stdin): 'ok' or
    what etcd said. The token stays on the host."""

    def command(self, endpoint: str, user: str, password_file: str, tls: TlsFiles | None = None):
        url = shlex.quote(endpoint.rstrip("/") + "/v3/auth/authenticate")
        login = f"{etcd_login_body(password_file, user)} | {etcd_curl(tls)} -d @- {url}"
        return f"out=$({login} 2>&1); case \"$out\" in *'\"token\"'*) echo ok;; *) echo \"$out\";; esac"

    def process(self, output):
        return "\n".join(output).strip()


class EtcdAuth(FactBase):
    """Whether the etcd at ``endpoint`` (from the host itself) has auth
    enabled: 'enabled', 'disabled' or 'unreachable' (see armada.parsers.secrets.etcd_auth_state).
    ``tls``: how curl speaks to an etcd over https (armada.commands.etcd.TlsFiles)."""

    def command(self, endpoint: str, tls: TlsFiles | None = None):
        url = shlex.quote(endpoint.rstrip("/") + "/v3/kv/range")
        return f"{etcd_curl(tls)} -d '{{\"key\":\"YQ==\"}}' {url} 2>&1; true"

    def process(self, output):
        return etcd_auth_state("\n".join(output))
