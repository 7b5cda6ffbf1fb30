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

import gevent
from pyinfra.context import ctx_config, ctx_host

from armada.commands.etcd import TlsFiles, etcd_curl, etcd_login_body, tls_args
from armada.commands.torch import VENV_FILES_PROBE, VENV_PROBE, serving_processes_script
from armada.parsers.torch import parse_serving_processes, parse_venv_probe
from armada.profile import Profile
from armada.role_support import etcd_tls, run_quiet
from armada.serving import running_torch_problem, torch_problem


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
               bearer_file: str | None = None, tls: TlsFiles | None = None) -> tuple[bool, dict | str]:
    """curl on the host. ``bearer_file``: a file on the host holding a token,
    sent as ``Authorization: Bearer`` through curl's stdin, so the secret is
    never on a command line (nor in pyinfra's output). ``tls``: the CA file
    (on the host) an https server's certificate is checked against, and the
    client certificate to present (armada.commands.etcd.TlsFiles)."""
    extra = " ".join(f"-H {shlex.quote(h)}" for h in headers) + tls_args(tls)
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
                     tls: TlsFiles | None = None) -> tuple[bool, dict | str]:
    """``http_json`` until ``good(answer)``: curl retries a refused connection
    ``retries`` times, then an answer that is not yet good is asked again,
    ``settle`` times a second apart. nats' /healthz answers 503 "failed to be
    ready for connections after 1ms" when the server, busy, misses the 1 ms it
    gives its own readiness probe (nats-server server.go readyForConnections;
    seen on the 2-core CI lab with two vLLMs loading), and etcd's /health is
    false until it has a leader: a single answer is not the host's state."""
    ok, answer = http_json(host, url, retries=retries, tls=tls)
    for _ in range(settle):
        if ok and good(answer):
            return True, answer
        time.sleep(1)
        ok, answer = http_json(host, url, tls=tls)
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
              tls: TlsFiles | None = None, user: str = "root") -> tuple[bool, str]:
    """A v3 range read at ``url`` (``body``: the range request; default one
    key): anonymous, or as ``user`` with the password in ``password_file`` (sent
    through curl's stdin; the token it gets never leaves the host).
    ``(read ok, what etcd said)``."""
    return etcd_reads(host, url, password_file, [body or {"key": "YQ=="}], tls, user)[0]


def etcd_reads(host, url: str, password_file: str | None, bodies: list[dict], tls: TlsFiles | None = None,
               user: str = "root") -> list[tuple[bool, str]]:
    """Several v3 range reads after one login (etcd checks a password with bcrypt: 0.2 s on the lab's
    x86_64 hosts, more under emulation), in one command; one ``(read ok, what etcd said)`` per body."""
    curl = etcd_curl(tls)
    reads = [f"{curl} -d {shlex.quote(json.dumps(body))} {shlex.quote(url + '/v3/kv/range')}" for body in bodies]
    if password_file:
        login = f"{etcd_login_body(password_file, user)} | {curl} -d @- {shlex.quote(url + '/v3/auth/authenticate')}"
        script = (f"t=$({login} | sed -n 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/p'); "
                  "[ -n \"$t\" ] || { echo 'authentication refused'; exit 1; }; "
                  + "; echo; ".join(f"printf 'Authorization: %s\\n' \"$t\" | {read} -H @-" for read in reads))
    else:
        script = "; echo; ".join(reads)
    ok, seen = run_quiet(host, f"bash -c {shlex.quote(script)}")
    answers = seen.splitlines() if ok or len(seen.splitlines()) == len(bodies) else [seen] * len(bodies)
    answers += [seen] * (len(bodies) - len(answers))
    return [(ok and '"header"' in answer and "error" not in answer, answer) for answer in answers[:len(bodies)]]


def control_plane_checks(host, nats_url: str, etcd_url: str, data: dict, python: str) -> list[Check]:
    """This host reaches its control plane's nats and etcd, as a Dynamo worker
    would: with the credentials its data names when the control plane asks for
    them, over TLS (checked against this host's CA files) when it speaks TLS.
    ``python``: an interpreter on the host (the serving venv's) for the TLS client."""
    return [check for part in concurrently(lambda: _reaches_etcd(host, etcd_url, data),
                                           lambda: _reaches_nats(host, nats_url, data, python))
            for check in part]


def _reaches_etcd(host, etcd_url: str, data: dict) -> list[Check]:
    tls = etcd_tls(data, etcd_url)
    ok, health = http_json_until(host, f"{etcd_url}/health", etcd_healthy, retries=10, tls=tls)
    checks = [Check(host.name, f"reaches etcd {etcd_url}", ok, shown(health))]
    if data["etcd_client_password_file"]:
        user = data["etcd_client_user"]
        ok, seen = etcd_read(host, etcd_url, data["etcd_client_password_file"], {"key": "djEv"}, tls=tls,
                             user=user)
        checks.append(Check(host.name, f"authenticates to etcd {etcd_url} as {user}", ok, seen[-120:]))
    return checks


def _reaches_nats(host, nats_url: str, data: dict, python: str) -> list[Check]:
    checks = []
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


def tcmalloc_of(host_name: str, profile: Profile, processes, what: str) -> Check:
    """tcmalloc in every process of the units (API server, EngineCore, Worker): ``processes`` from
    armada.parsers.torch.parse_serving_processes."""
    library = os.path.basename(profile.tcmalloc_path)
    lines = [f"{'mapped' if any(library in lib for lib in p.libraries) else 'missing'} {p.pid} {p.comm}"
             for p in processes]
    mapped = [line for line in lines if line.startswith("mapped ")]
    return Check(host_name, f"tcmalloc mapped in {what}", bool(mapped) and len(mapped) == len(lines),
                 "; ".join(lines) or f"no {what} process found")


def venv_probe(host, profile: Profile, venv: str) -> str:
    """The venv's distributions and torch build (armada.parsers.torch.parse_venv_probe): read from
    torch's files on a CPU-only host (no import: 2.2 s of CPU on the lab), imported on a GPU host, where
    CUDA's devices are counted."""
    script = VENV_PROBE if profile.accelerator == "cuda" else VENV_FILES_PROBE
    return run_quiet(host, f"{shlex.quote(venv + '/bin/python')} -c {shlex.quote(script)}", with_stderr=False)[1]


def torch_verdict(host_name: str, profile: Profile, probe: str, serving: tuple[str | None, list] | None = None) -> Check:
    """The venv's torch is the profile's build (its version, its CUDA version, no CUDA wheels on a
    CPU-only host), from ``probe`` (venv_probe's output); and, given ``serving`` (the install's real path
    and its processes, from parse_serving_processes), the build the serving processes loaded."""
    build, distributions = parse_venv_probe(probe)
    problem = torch_problem(build, profile, distributions)
    if problem is None and serving is not None:
        problem = running_torch_problem(*serving, profile)
    seen = f"torch {build.version} cuda={build.cuda}" if build else (probe[-200:] or "no torch in the venv")
    if serving is not None and problem is None:
        loaded = sum(1 for p in serving[1] if any("/libtorch_" in lib for lib in p.libraries))
        seen += f", loaded by {loaded} serving process(es)"
    return Check(host_name, "venv torch is the profile's build", problem is None, problem or seen)


def torch_check(host, profile: Profile, venv: str) -> Check:
    """The venv's torch alone (no serving process asked)."""
    return torch_verdict(host.name, profile, venv_probe(host, profile, venv))


def process_checks(host, profile: Profile, venv: str, cgroup_pattern: str, what: str) -> list[Check]:
    """tcmalloc in every serving process (when the profile preloads it) and the venv's torch, also as
    loaded by those processes: one scan of the processes' memory maps and one python run, at once."""
    (_, scan), probe = concurrently(
        lambda: run_quiet(host, f"bash -c {shlex.quote(serving_processes_script(cgroup_pattern, venv))}"),
        lambda: venv_probe(host, profile, venv))
    install, processes = parse_serving_processes(scan)
    checks = [tcmalloc_of(host.name, profile, processes, what)] if profile.tcmalloc_path else []
    return checks + [torch_verdict(host.name, profile, probe, (install, processes))]


def concurrently(*calls):
    """Run zero-argument callables at once, each in its own greenlet (pyinfra runs on gevent): their
    commands go to the host over the same SSH connection, each on its own channel, so a host's checks
    wait for the slowest of them, not for their sum. Their results, in the order given. pyinfra's
    context (the ``host`` and ``config`` a deploy file imports) is greenlet-local: each greenlet gets
    the caller's."""
    host_now, config_now = ctx_host.get(), ctx_config.get()

    def within_context(call):
        def run():
            with ctx_host.use(host_now), ctx_config.use(config_now):
                return call()
        return run

    jobs = [gevent.spawn(within_context(call)) for call in calls]
    gevent.joinall(jobs, raise_error=True)
    return [job.value for job in jobs]


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
