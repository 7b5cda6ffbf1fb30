"""What the checks of a secret or TLS file on a host reported
(:mod:`armada.commands.secrets`), and etcd's auth state from its answer to
an unauthenticated request. The secrets themselves never reach these."""

from __future__ import annotations

from armada.commands.secrets import PEM_KINDS, SECRET_CHARS

_SECRET_PROBLEMS = {
    "missing": "no such file on the host (write it with your secret delivery before the run)",
    "not-a-file": "not a regular file on the host",
    "unreadable": "the deploy user cannot read it on the host",
    "empty": "the file on the host is empty",
    "multiline": "the file on the host holds more than one line (one secret, one line)",
    "unsafe": f"the secret holds characters other than {SECRET_CHARS} (e.g. use `openssl rand -hex 32`)",
}


def secret_file_problem(output: str) -> str | None:
    """The problem :func:`armada.commands.secrets.secret_file_command` (or
    ``pem_file_command``) reported, or None when the file is usable."""
    word = output.strip().splitlines()[-1].strip() if output.strip() else ""
    if word == "ok":
        return None
    if word.startswith("closed-folder "):
        _, folder, mode = word.split(" ", 2)
        return (f"the folder {folder} (mode {mode}) does not let the service user through to the file: "
                "make it searchable (chmod o+x, e.g. 0711)")
    for kind in PEM_KINDS:
        if word == f"not-{kind}":
            return f"the file on the host holds no PEM {kind} (a '{PEM_KINDS[kind].replace('[A-Z ]*', '')}' block)"
    return _SECRET_PROBLEMS.get(word, f"could not inspect the file: {output.strip()[-200:]!r}")


def etcd_auth_state(output: str) -> str:
    """etcd's answer to an unauthenticated v3 range request -> 'enabled', 'disabled' or 'unreachable'."""
    if "user name is empty" in output or "invalid auth token" in output or "permission denied" in output:
        return "enabled"
    if '"header"' in output:
        return "disabled"
    return "unreachable"
