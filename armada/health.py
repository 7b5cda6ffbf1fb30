"""Health checks: read, never change. Each gives (host, check, ok, what was seen).

This module holds what the roles' checks share (probes of units, HTTP, nats,
etcd, the control plane, tcmalloc, the venv's torch) and the report; each
role's own checks are in its package (``roles/<role>/health.py``), run by
the health phase through the registry.

They run from the control machine over the deploy's own connection (a
``python.call`` at the end of a deploy), so they see the host as it is after
the run. Deep checks: a real chat completion, not only /health (a server
whose engine cannot generate still answers /health with 200).
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import asdict, dataclass

from armada.commands.etcd import etcd_curl, etcd_login_body
from armada.commands.torch import DISTRIBUTIONS_PROBE, TORCH_PROBE
from armada.parsers.torch import parse_distributions, parse_torch_probe
from armada.profile import Profile
from armada.role_support import etcd_ca, run_quiet
from armada.serving import torch_problem


@dataclass(frozen=True)
class Check:
    host: str
    check: str
    ok: bool
    seen: str


def unit_active(host, unit: str) -> Check:
    ok, seen = run_quiet(host, f"systemctl is-active {unit}.service")
    return Check(host.name, f"{unit} active", ok and seen == "active", seen)


def http_json(host, url: str, body: dict | None = None, retries: int = 0, headers=(),
               bearer_file: str | None = None, cacert: str | None = None) -> tuple[bool, dict | str]:
    """curl on the host. ``bearer_file``: a file on the host holding a token,
    sent as ``Authorization: Bearer`` through curl's stdin, so the secret is
    never on a command line (nor in pyinfra's output). ``cacert``: the CA file
    (on the host) an https server's certificate is checked against."""
    extra = " ".join(f"-H {shlex.quote(h)}" for h in headers)
    if cacert:
        extra += f" --cacert {shlex.quote(cacert)}"
    if body is not None:
        extra += f" -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}"
    curl = f"curl -sS --max-time 120 --noproxy '*' {extra} {shlex.quote(url)}"
    if bearer_file:
        # printf is a bash builtin: the token is in no process's argv
        header = f'printf "Authorization: Bearer %s\\n" "$(cat {shlex.quote(bearer_file)})"'
        curl = f"bash -c {shlex.quote(header + ' | ' + curl + ' -H @-')}"
    if retries:
        curl = f"for i in $(seq {retries}); do {curl} && exit 0; sleep 1; done; exit 1"
        curl = f"bash -c {shlex.quote(curl)}"
    ok, text = run_quiet(host, curl)
    try:
        return ok, json.loads(text)
    except ValueError:
        return False, text[-300:]


def http_json_until(host, url: str, good, retries: int, settle: int = 15,
                     cacert: str | None = None) -> tuple[bool, dict | str]:
    """``http_json`` until ``good(answer)``: curl retries a refused connection
    ``retries`` times, then an answer that is not yet good is asked again,
    ``settle`` times a second apart. nats' /healthz answers 503 "failed to be
    ready for connections after 1ms" when the server, busy, misses the 1 ms it
    gives its own readiness probe (nats-server server.go readyForConnections;
    seen on the 2-core CI lab with two vLLMs loading), and etcd's /health is
    false until it has a leader: a single answer is not the host's state."""
    ok, answer = http_json(host, url, retries=retries, cacert=cacert)
    for _ in range(settle):
        if ok and good(answer):
            return True, answer
        time.sleep(1)
        ok, answer = http_json(host, url, cacert=cacert)
    return ok and good(answer), answer


def shortened(text: str, head: int = 140, tail: int = 200) -> str:
    """A long output kept readable in a report: its start (what happened) and its end (the last error lines)."""
    return text if len(text) <= head + tail + 5 else f"{text[:head]} ... {text[-tail:]}"


def shown(answer) -> str:
    return json.dumps(answer) if isinstance(answer, dict) else answer


# A TLS nats client, run by python on the host: nats sends INFO in the clear,
# then the client upgrades the connection (ssl, checked against the CA file),
# sends CONNECT (with the user and the password read from its file, never in
# argv) and PING. Prints the INFO banner's start and the server's reply.
NATS_TLS_PROBE = r"""
import json, socket, ssl, sys
address, port, ca, user, password_file = sys.argv[1:6]
raw = socket.create_connection((address, int(port)), timeout=10)
info = b""
while not info.endswith(b"\r\n"):
    chunk = raw.recv(1)
    if not chunk:
        break
    info += chunk
print(info.decode()[:60].strip())
try:
    conn = ssl.create_default_context(cafile=ca or None).wrap_socket(raw, server_hostname=address)
except (ssl.SSLError, OSError) as exc:
    print("TLS refused:", exc)
    sys.exit(0)
request = {"verbose": False, "pedantic": False, "tls_required": True}
if user:
    request.update({"user": user, "pass": open(password_file).read().strip()})
conn.sendall(b"CONNECT " + json.dumps(request).encode() + b"\r\nPING\r\n")
reply = b""
try:
    while b"PONG" not in reply and b"-ERR" not in reply:
        chunk = conn.recv(4096)
        if not chunk:
            break
        reply += chunk
except (ssl.SSLError, OSError):
    pass
print(" | ".join(line for line in reply.decode(errors="replace").splitlines() if line.strip()) or "closed")
"""


def nats_tls_connect(host, python: str, address: str, port: int, ca_file: str | None,
                      user: str | None = None, password_file: str | None = None) -> str:
    script = f"{shlex.quote(python)} -c {shlex.quote(NATS_TLS_PROBE)} " + " ".join(
        shlex.quote(str(a)) for a in (address, port, ca_file or "", user or "", password_file or ""))
    _, seen = run_quiet(host, f"timeout 30 {script}")
    return " | ".join(line.strip() for line in seen.splitlines() if line.strip())


def nats_healthy(answer) -> bool:
    return isinstance(answer, dict) and answer.get("status") == "ok"


def etcd_healthy(answer) -> bool:
    return isinstance(answer, dict) and answer.get("health") == "true"


def nats_connect(host, address: str, port: int, user: str | None = None, password_file: str | None = None) -> str:
    """The server's INFO banner, then its reply to CONNECT (with ``user`` and the
    password read from ``password_file`` on the host, by shell builtins only)
    and PING: 'PONG' when let in. Returns the lines joined by ' | '."""
    credentials = ""
    if user:
        credentials = ',"user":"%s","pass":"%s"'
    connect = "printf 'CONNECT {\"verbose\":false,\"pedantic\":false" + credentials + "}\\r\\nPING\\r\\n'"
    if user:
        # the user and the password are printf's arguments, never its format
        connect += f' {shlex.quote(user)} "$(cat {shlex.quote(password_file)})"'
    script = (
        f"exec 3<>{shlex.quote(f'/dev/tcp/{address}/{int(port)}')} || exit 1; read -r -t 10 info <&3; echo \"${{info:0:60}}\"; "
        "[[ $info == *'\"tls_required\":true'* ]] && echo tls_required; "
        f"{connect} >&3; read -r -t 10 reply <&3; echo \"${{reply%$'\\r'}}\""
    )
    _, seen = run_quiet(host, f"timeout 20 bash -c {shlex.quote(script)}")
    return " | ".join(line.strip() for line in seen.splitlines() if line.strip())


def etcd_read(host, url: str, password_file: str | None = None, body: dict | None = None,
              ca_file: str | None = None, user: str = "root") -> tuple[bool, str]:
    """A v3 range read at ``url`` (``body``: the range request; default one
    key): anonymous, or as ``user`` with the password in ``password_file`` (sent
    through curl's stdin; the token it gets never leaves the host).
    ``(read ok, what etcd said)``."""
    curl = etcd_curl(ca_file)
    request = json.dumps(body or {"key": "YQ=="})
    read = f"{curl} -d {shlex.quote(request)} {shlex.quote(url + '/v3/kv/range')}"
    if password_file:
        login = f"{etcd_login_body(password_file, user)} | {curl} -d @- {shlex.quote(url + '/v3/auth/authenticate')}"
        script = (f"t=$({login} | sed -n 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/p'); "
                  "[ -n \"$t\" ] || { echo 'authentication refused'; exit 1; }; "
                  f"printf 'Authorization: %s\\n' \"$t\" | {read} -H @-")
    else:
        script = read
    ok, seen = run_quiet(host, f"bash -c {shlex.quote(script)}")
    return ok and '"header"' in seen and "error" not in seen, seen


def control_plane_checks(host, nats_url: str, etcd_url: str, data: dict, python: str) -> list[Check]:
    """This host reaches its control plane's nats and etcd, as a Dynamo worker
    would: with the credentials its data names when the control plane asks for
    them, over TLS (checked against this host's CA files) when it speaks TLS.
    ``python``: an interpreter on the host (the serving venv's) for the TLS client."""
    ca = etcd_ca(data, etcd_url)
    ok, health = http_json_until(host, f"{etcd_url}/health", etcd_healthy, retries=10, cacert=ca)
    checks = [Check(host.name, f"reaches etcd {etcd_url}", ok, shown(health))]
    if data["etcd_client_password_file"]:
        user = data["etcd_client_user"]
        ok, seen = etcd_read(host, etcd_url, data["etcd_client_password_file"], {"key": "djEv"}, ca_file=ca,
                             user=user)
        checks.append(Check(host.name, f"authenticates to etcd {etcd_url} as {user}", ok, seen[-120:]))
    scheme, rest = nats_url.split("://", 1)
    address, port = rest.rsplit(":", 1)
    if scheme == "tls":
        nats_ca = data["nats_tls_ca_file"]
        if data["nats_password_file"]:
            seen = nats_tls_connect(host, python, address, int(port), nats_ca)
            checks.append(Check(host.name, f"nats over TLS refuses a client without the password {nats_url}",
                                "Authorization Violation" in seen, seen[-160:]))
            seen = nats_tls_connect(host, python, address, int(port), nats_ca, data["nats_user"],
                                     data["nats_password_file"])
            checks.append(Check(host.name, f"authenticates to nats over TLS {nats_url}", seen.endswith("PONG"),
                                seen[-160:]))
        else:
            seen = nats_tls_connect(host, python, address, int(port), nats_ca)
            checks.append(Check(host.name, f"reaches nats over TLS {nats_url}", seen.endswith("PONG"), seen[-160:]))
    elif data["nats_password_file"]:
        seen = nats_connect(host, address, int(port), data["nats_user"], data["nats_password_file"])
        checks.append(Check(host.name, f"authenticates to nats {nats_url}", seen.endswith("PONG"), seen[-120:]))
    else:
        seen = nats_connect(host, address, int(port))
        checks.append(Check(host.name, f"reaches nats {nats_url}", seen.startswith("INFO "), seen[:120]))
    return checks


def ready_wait_script(base: str, unit: str, ready_timeout: int) -> str:
    """Wait up to ``ready_timeout`` s for ``base``/health to answer 200, but
    stop at once when the unit's process has exited (systemd shows it failed,
    or waiting to restart it): a vLLM that cannot start (a bad argument, a
    model it cannot load) exits within seconds, and waiting out the timeout
    would only delay the verdict (and an upgrade's rollback). Prints why it
    stopped, with the journal's last lines."""
    unit_q = shlex.quote(unit)
    return (
        f"for i in $(seq {int(ready_timeout)}); do "
        f"curl -sf --noproxy '*' {base}/health >/dev/null && exit 0; "
        f"state=$(systemctl show -p ActiveState -p SubState --value {unit_q} | tr '\\n' ' '); "
        f"case \"$state\" in *failed*|*auto-restart*) "
        f"echo \"{unit} exited before answering /health ($state): $(journalctl -u {unit_q} -n 3 -o cat --no-pager "
        f"2>/dev/null | tr '\\n' ' ')\"; exit 1;; esac; "
        "sleep 1; done; "
        f"echo \"no answer within {int(ready_timeout)}s\"; exit 1"
    )


def tcmalloc_check(host, profile: Profile, cgroup_pattern: str, what: str) -> Check:
    """tcmalloc in every process of the units (API server, EngineCore, Worker),
    found by their cgroup line, which reads the same under cgroup v1 and v2."""
    library = shlex.quote(os.path.basename(profile.tcmalloc_path))
    script = (
        f"for f in $(grep -l {shlex.quote(cgroup_pattern)} /proc/[0-9]*/cgroup 2>/dev/null); do p=${{f#/proc/}}; "
        "p=${p%/cgroup}; "
        f"if grep -q {library} /proc/$p/maps 2>/dev/null; then echo \"mapped $p $(cat /proc/$p/comm)\"; "
        "else echo \"missing $p $(cat /proc/$p/comm)\"; fi; done"
    )
    _, seen = run_quiet(host, f"bash -c {shlex.quote(script)}")
    lines = [line for line in seen.splitlines() if line.startswith(("mapped ", "missing "))]
    mapped = [line for line in lines if line.startswith("mapped ")]
    return Check(host.name, f"tcmalloc mapped in {what}", bool(mapped) and len(mapped) == len(lines),
                 "; ".join(lines) or f"no {what} process found")


def torch_check(host, profile: Profile, venv: str) -> Check:
    ok, probe = run_quiet(host, f"{shlex.quote(venv + '/bin/python')} -c {shlex.quote(TORCH_PROBE)} 2>/dev/null")
    build = parse_torch_probe(probe) if ok else None
    _, listing = run_quiet(host, f"{shlex.quote(venv + '/bin/python')} -c {shlex.quote(DISTRIBUTIONS_PROBE)}")
    problem = torch_problem(build, profile, parse_distributions(listing))
    seen = f"torch {build.version} cuda={build.cuda}" if build else probe[-200:]
    return Check(host.name, "venv torch is the profile's build", problem is None, problem or seen)


def render_table(checks: list[Check]) -> str:
    rows = [("host", "check", "ok", "seen")] + [(c.host, c.check, "ok" if c.ok else "FAIL", c.seen) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3][:100]}" for r in rows]
    return "\n".join(lines)


def write_report(path: str, host_name: str, checks: list[Check], seconds: dict[str, float] | None = None) -> None:
    """Merge one host's checks (and ``seconds``: each role's health time) into the JSON report file on the
    control machine."""
    report = {}
    if os.path.exists(path):
        try:
            with open(path) as handle:
                report = json.load(handle)
        except ValueError:
            report = {}
    report[host_name] = {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
    if seconds is not None:
        report[host_name]["seconds"] = seconds
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)
