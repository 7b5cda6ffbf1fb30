"""Health checks: read, never change. Each gives (host, check, ok, what was seen).

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
from armada.commands.snapshot import NVIDIA_SMI_QUERY
from armada.commands.torch import DISTRIBUTIONS_PROBE, TORCH_PROBE
from armada.parsers import ParseError
from armada.parsers.gpu import parse_nvidia_smi_csv
from armada.parsers.torch import parse_distributions, parse_torch_probe
from armada.profile import Profile
from armada.role_support import etcd_ca, local_etcd, run_quiet


@dataclass(frozen=True)
class Check:
    host: str
    check: str
    ok: bool
    seen: str


def _unit_active(host, unit: str) -> Check:
    ok, seen = run_quiet(host, f"systemctl is-active {unit}.service")
    return Check(host.name, f"{unit} active", ok and seen == "active", seen)


def _http_json(host, url: str, body: dict | None = None, retries: int = 0, headers=(),
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


def _http_json_until(host, url: str, good, retries: int, settle: int = 15,
                     cacert: str | None = None) -> tuple[bool, dict | str]:
    """``_http_json`` until ``good(answer)``: curl retries a refused connection
    ``retries`` times, then an answer that is not yet good is asked again,
    ``settle`` times a second apart. nats' /healthz answers 503 "failed to be
    ready for connections after 1ms" when the server, busy, misses the 1 ms it
    gives its own readiness probe (nats-server server.go readyForConnections;
    seen on the 2-core CI lab with two vLLMs loading), and etcd's /health is
    false until it has a leader: a single answer is not the host's state."""
    ok, answer = _http_json(host, url, retries=retries, cacert=cacert)
    for _ in range(settle):
        if ok and good(answer):
            return True, answer
        time.sleep(1)
        ok, answer = _http_json(host, url, cacert=cacert)
    return ok and good(answer), answer


def _shown(answer) -> str:
    return json.dumps(answer) if isinstance(answer, dict) else answer


def nats_checks(host, data: dict) -> list[Check]:
    monitor = f"http://127.0.0.1:{data['nats_monitor_port']}"
    checks = [_unit_active(host, "armada-nats")]
    ok, health = _http_json_until(host, f"{monitor}/healthz", _nats_healthy, retries=30)
    checks.append(Check(host.name, "nats /healthz", ok, _shown(health)))
    ok, jsz = _http_json(host, f"{monitor}/jsz")
    enabled = ok and isinstance(jsz, dict) and not jsz.get("disabled") and "config" in jsz
    seen = f"store_dir={jsz['config'].get('store_dir')}" if enabled else str(jsz)[:200]
    checks.append(Check(host.name, "nats JetStream enabled", enabled, seen))
    address = "127.0.0.1" if data["nats_listen"] in ("0.0.0.0", "::") else data["nats_listen"]
    if data["nats_tls_cert_file"]:
        # a plaintext client is told to speak TLS and let go; the password is
        # then checked over TLS by the hosts using this nats (control_plane_checks)
        reply = _nats_connect(host, address, data["nats_port"])
        checks.append(Check(host.name, "nats requires TLS of every client",
                            " | tls_required" in reply and not reply.endswith("PONG"), reply[-160:]))
    elif data["nats_password_file"]:
        reply = _nats_connect(host, address, data["nats_port"])
        checks.append(Check(host.name, "nats refuses a client without the password",
                            "Authorization Violation" in reply, reply[-120:]))
        reply = _nats_connect(host, address, data["nats_port"], data["nats_user"], data["nats_password_file"])
        checks.append(Check(host.name, f"nats accepts {data['nats_user']} with its password",
                            reply.endswith("PONG"), reply[-120:]))
    return checks


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


def _nats_tls_connect(host, python: str, address: str, port: int, ca_file: str | None,
                      user: str | None = None, password_file: str | None = None) -> str:
    script = f"{shlex.quote(python)} -c {shlex.quote(NATS_TLS_PROBE)} " + " ".join(
        shlex.quote(str(a)) for a in (address, port, ca_file or "", user or "", password_file or ""))
    _, seen = run_quiet(host, f"timeout 30 {script}")
    return " | ".join(line.strip() for line in seen.splitlines() if line.strip())


def _nats_healthy(answer) -> bool:
    return isinstance(answer, dict) and answer.get("status") == "ok"


def _etcd_healthy(answer) -> bool:
    return isinstance(answer, dict) and answer.get("health") == "true"


def _nats_connect(host, address: str, port: int, user: str | None = None, password_file: str | None = None) -> str:
    """The server's INFO banner, then its reply to CONNECT (with ``user`` and the
    password read from ``password_file`` on the host, by shell builtins only)
    and PING: 'PONG' when let in. Returns the lines joined by ' | '."""
    credentials = ""
    if user:
        credentials = f',"user":"{user}","pass":"%s"'
    connect = "printf 'CONNECT {\"verbose\":false,\"pedantic\":false" + credentials + "}\\r\\nPING\\r\\n'"
    if user:
        connect += f' "$(cat {shlex.quote(password_file)})"'
    script = (
        f"exec 3<>/dev/tcp/{address}/{port} || exit 1; read -r -t 10 info <&3; echo \"${{info:0:60}}\"; "
        "[[ $info == *'\"tls_required\":true'* ]] && echo tls_required; "
        f"{connect} >&3; read -r -t 10 reply <&3; echo \"${{reply%$'\\r'}}\""
    )
    _, seen = run_quiet(host, f"timeout 20 bash -c {shlex.quote(script)}")
    return " | ".join(line.strip() for line in seen.splitlines() if line.strip())


def etcd_checks(host, data: dict) -> list[Check]:
    checks = [_unit_active(host, "armada-etcd")]
    url, ca = local_etcd(data)
    ok, health = _http_json_until(host, f"{url}/health", _etcd_healthy, retries=30, cacert=ca)
    checks.append(Check(host.name, "etcd endpoint health", ok, _shown(health)))
    if ca:
        _, seen = run_quiet(host, f"curl -sS --max-time 10 --noproxy '*' http://127.0.0.1:{data['etcd_client_port']}/health")
        checks.append(Check(host.name, "etcd answers plain http with no health", '"health"' not in seen, seen[-120:]))
    if data["etcd_password_file"]:
        ok, seen = _etcd_read(host, url, ca_file=ca)
        checks.append(Check(host.name, "etcd refuses a request without credentials", "user name is empty" in seen,
                            seen[-120:]))
        ok, seen = _etcd_read(host, url, data["etcd_password_file"], ca_file=ca)
        checks.append(Check(host.name, "etcd root authenticates and reads", ok, seen[-120:]))
    return checks


def _etcd_read(host, url: str, password_file: str | None = None, body: dict | None = None,
               ca_file: str | None = None) -> tuple[bool, str]:
    """A v3 range read at ``url`` (``body``: the range request; default one
    key): anonymous, or as root with the password in ``password_file`` (sent
    through curl's stdin; the token it gets never leaves the host).
    ``(read ok, what etcd said)``."""
    curl = etcd_curl(ca_file)
    request = json.dumps(body or {"key": "YQ=="})
    read = f"{curl} -d {shlex.quote(request)} {shlex.quote(url + '/v3/kv/range')}"
    if password_file:
        login = f"{etcd_login_body(password_file)} | {curl} -d @- {shlex.quote(url + '/v3/auth/authenticate')}"
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
    ok, health = _http_json_until(host, f"{etcd_url}/health", _etcd_healthy, retries=10, cacert=ca)
    checks = [Check(host.name, f"reaches etcd {etcd_url}", ok, _shown(health))]
    if data["etcd_password_file"]:
        ok, seen = _etcd_read(host, etcd_url, data["etcd_password_file"], ca_file=ca)
        checks.append(Check(host.name, f"authenticates to etcd {etcd_url}", ok, seen[-120:]))
    scheme, rest = nats_url.split("://", 1)
    address, port = rest.rsplit(":", 1)
    if scheme == "tls":
        nats_ca = data["nats_tls_ca_file"]
        if data["nats_password_file"]:
            seen = _nats_tls_connect(host, python, address, int(port), nats_ca)
            checks.append(Check(host.name, f"nats over TLS refuses a client without the password {nats_url}",
                                "Authorization Violation" in seen, seen[-160:]))
            seen = _nats_tls_connect(host, python, address, int(port), nats_ca, data["nats_user"],
                                     data["nats_password_file"])
            checks.append(Check(host.name, f"authenticates to nats over TLS {nats_url}", seen.endswith("PONG"),
                                seen[-160:]))
        else:
            seen = _nats_tls_connect(host, python, address, int(port), nats_ca)
            checks.append(Check(host.name, f"reaches nats over TLS {nats_url}", seen.endswith("PONG"), seen[-160:]))
    elif data["nats_password_file"]:
        seen = _nats_connect(host, address, int(port), data["nats_user"], data["nats_password_file"])
        checks.append(Check(host.name, f"authenticates to nats {nats_url}", seen.endswith("PONG"), seen[-120:]))
    else:
        seen = _nats_connect(host, address, int(port))
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


def vllm_checks(host, data: dict, profile: Profile, venv: str, model: str, ready_timeout: int = 600) -> list[Check]:
    base = f"http://127.0.0.1:{data['vllm_port']}"
    checks = [_unit_active(host, "armada-vllm")]
    ok, seen = run_quiet(host, f"bash -c {shlex.quote(ready_wait_script(base, 'armada-vllm', ready_timeout))}")
    checks.append(Check(host.name, "vLLM /health", ok, "200" if ok else (seen.strip()[-300:] or
                                                                          f"no answer within {ready_timeout}s")))
    key_file = data.get("vllm_api_key_file")
    if key_file:
        _, status = run_quiet(host, f"curl -s -o /dev/null -w '%{{http_code}}' --noproxy '*' {base}/v1/models")
        checks.append(Check(host.name, "vLLM refuses a request without the API key", status.strip() == "401",
                            f"HTTP {status.strip()}"))
    ok, models = _http_json(host, f"{base}/v1/models", bearer_file=key_file)
    names = [m.get("id") for m in models.get("data", [])] if ok and isinstance(models, dict) else []
    checks.append(Check(host.name, "vLLM /v1/models lists the model", model in names, ", ".join(names) or str(models)[:200]))
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}
    ok, reply = _http_json(host, f"{base}/v1/chat/completions", body=body, bearer_file=key_file)
    tokens = reply.get("usage", {}).get("completion_tokens", 0) if ok and isinstance(reply, dict) else 0
    content = reply["choices"][0]["message"].get("content") if tokens else str(reply)[:200]
    checks.append(Check(host.name, "vLLM chat completion generates", tokens > 0, f"{tokens} tokens: {content!r}"))

    if profile.tcmalloc_path:
        checks.append(_tcmalloc_check(host, profile, "armada-vllm.service", "vLLM"))
    checks.append(_torch_check(host, profile, venv))
    return checks


def _tcmalloc_check(host, profile: Profile, cgroup_pattern: str, what: str) -> Check:
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


def _torch_check(host, profile: Profile, venv: str) -> Check:
    from roles.vllm import torch_problem

    ok, probe = run_quiet(host, f"{shlex.quote(venv + '/bin/python')} -c {shlex.quote(TORCH_PROBE)} 2>/dev/null")
    build = parse_torch_probe(probe) if ok else None
    _, listing = run_quiet(host, f"{shlex.quote(venv + '/bin/python')} -c {shlex.quote(DISTRIBUTIONS_PROBE)}")
    problem = torch_problem(build, profile, parse_distributions(listing))
    seen = f"torch {build.version} cuda={build.cuda}" if build else probe[-200:]
    return Check(host.name, "venv torch is the profile's build", problem is None, problem or seen)


def cpu_ms_script(unit: str) -> str:
    """bash printing ``<ticks> <ticks per second>``: the CPU time (user +
    system) of the unit's processes so far, from /proc (systemd's
    CPUUsageNSec needs CPU accounting, which containers may lack)."""
    return (
        "t=0; for f in $(grep -l " + shlex.quote(unit) + " /proc/[0-9]*/cgroup 2>/dev/null); do "
        "p=${f#/proc/}; p=${p%/cgroup}; "
        "n=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | awk '{print $12 + $13}'); t=$((t + ${n:-0})); done; "
        "echo \"$t $(getconf CLK_TCK)\""
    )


def cpu_ms(seen: str) -> float:
    """Milliseconds from what ``cpu_ms_script`` printed (0.0 when it printed nothing usable)."""
    try:
        ticks, per_second = seen.split()[-2:]
        return int(ticks) * 1000 / int(per_second)
    except ValueError:
        return 0.0


def _cpu_ms(host, unit: str) -> float:
    _, seen = run_quiet(host, f"bash -c {shlex.quote(cpu_ms_script(unit))}")
    return cpu_ms(seen)


def dynamo_checks(host, data: dict, profile: Profile, venv: str, model: str, workers, etcd_url: str,
                  ready_timeout: int = 600) -> list[Check]:
    """Dynamo serving: the frontend and every worker unit active, the model
    listed by the frontend (workers register after loading it), a real chat
    completion through the frontend, every worker registered in etcd, in
    disaggregated mode the prefill workers' CPU time rising during a request,
    tcmalloc in every worker process, the venv's torch."""
    import base64

    from roles.dynamo import FRONTEND, WORKER

    checks = [_unit_active(host, FRONTEND)] + [_unit_active(host, w.unit.removesuffix(".service")) for w in workers]
    base = f"http://127.0.0.1:{data['dynamo_frontend_port']}"
    wait = (f"for i in $(seq {ready_timeout}); do curl -s --noproxy '*' {base}/v1/models "
            f"| grep -q {shlex.quote(json.dumps(model))} && exit 0; sleep 1; done; exit 1")
    ok, _ = run_quiet(host, f"bash -c {shlex.quote(wait)}")
    ok, models = _http_json(host, f"{base}/v1/models")
    names = [m.get("id") for m in models.get("data", [])] if ok and isinstance(models, dict) else []
    checks.append(Check(host.name, "Dynamo frontend /v1/models lists the model", model in names,
                        ", ".join(names) or f"not within {ready_timeout}s: {str(models)[:160]}"))
    prefill = [w.unit for w in workers if w.part == "prefill"]
    before = {unit: _cpu_ms(host, unit) for unit in prefill}
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}
    ok, reply = _http_json(host, f"{base}/v1/chat/completions", body=body)
    tokens = reply.get("usage", {}).get("completion_tokens", 0) if ok and isinstance(reply, dict) else 0
    content = reply["choices"][0]["message"].get("content") if tokens else str(reply)[:200]
    checks.append(Check(host.name, "chat completion through the Dynamo frontend generates", tokens > 0,
                        f"{tokens} tokens: {content!r}"))
    for unit in prefill:
        used_ms = _cpu_ms(host, unit) - before[unit]
        checks.append(Check(host.name, f"the request went through {unit.removesuffix('.service')}", used_ms > 20,
                            f"{used_ms:.0f} ms of CPU during the request"))

    if data["dynamo_discovery_backend"] == "etcd":
        prefix = f"v1/instances/{data['dynamo_namespace']}/".encode()
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        ok, seen = _etcd_read(host, etcd_url, data["etcd_password_file"],
                              {"key": base64.b64encode(prefix).decode(), "range_end": base64.b64encode(end).decode(),
                               "keys_only": True},
                              ca_file=etcd_ca(data, etcd_url))
        try:
            keys = [base64.b64decode(kv["key"]).decode() for kv in json.loads(seen).get("kvs", [])]
        except ValueError:
            keys = []
        # one key per served endpoint of each worker: backend (aggregated, decode) or prefill components
        components = {key.split("/")[3] for key in keys if len(key.split("/")) > 3}
        wanted = {"prefill" if w.part == "prefill" else "backend" for w in workers}
        checks.append(Check(host.name, f"workers registered in etcd ({prefix.decode()})",
                            ok and len(keys) >= len(workers) and wanted <= components,
                            f"{len(keys)} key(s), components {sorted(components)}" if ok else seen[-160:]))
    if profile.tcmalloc_path:
        checks.append(_tcmalloc_check(host, profile, f"{WORKER}@", "Dynamo workers"))
    checks.append(_torch_check(host, profile, venv))
    return checks


def evaluate_gpus(host_name: str, gpus, profile: Profile, branch: str) -> list[Check]:
    """What nvidia-smi reports against what the host should have (pure)."""
    seen = ", ".join(f"{g.index}:{g.name}" for g in gpus) or "nvidia-smi answered nothing"
    checks = [Check(host_name, "nvidia-smi sees the GPUs", len(gpus) == profile.gpu_count and bool(gpus),
                    f"{len(gpus)} of {profile.gpu_count}: {seen}")]
    versions = sorted({g.driver_version for g in gpus if g.driver_version})
    ok = bool(versions) and all(int(v.split(".")[0]) >= int(branch) for v in versions)
    checks.append(Check(host_name, f"driver >= branch {branch}", ok, ", ".join(versions) or "unknown"))
    modes = [g.persistence_mode for g in gpus]
    checks.append(Check(host_name, "persistence mode on", bool(modes) and all(modes),
                        ", ".join("on" if m else "off" for m in modes) or "unknown"))
    return checks


def gpu_checks(host, profile: Profile, data: dict) -> list[Check]:
    """nvidia-smi answers with the expected GPUs, driver and persistence; vLLM runs on them."""
    ok, text = run_quiet(host, f"nvidia-smi --query-gpu={NVIDIA_SMI_QUERY} --format=csv")
    try:
        gpus = parse_nvidia_smi_csv(text) if ok else ()
    except ParseError:
        gpus = ()
    checks = evaluate_gpus(host.name, gpus, profile, data["nvidia_driver_branch"])
    if "vllm_service" in data["armada_roles"]:
        script = (
            "for p in $(nvidia-smi --query-compute-apps=pid --format=csv,noheader); do "
            "grep -q armada-vllm.service /proc/$p/cgroup 2>/dev/null && echo \"$p $(cat /proc/$p/comm)\"; done"
        )
        _, seen = run_quiet(host, f"bash -c {shlex.quote(script)}")
        checks.append(Check(host.name, "vLLM runs on the GPUs", bool(seen.strip()), seen.replace("\n", "; ") or "no vLLM process on any GPU"))
    return checks


def render_table(checks: list[Check]) -> str:
    rows = [("host", "check", "ok", "seen")] + [(c.host, c.check, "ok" if c.ok else "FAIL", c.seen) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3][:100]}" for r in rows]
    return "\n".join(lines)


def write_report(path: str, host_name: str, checks: list[Check]) -> None:
    """Merge one host's checks into the JSON report file on the control machine."""
    report = {}
    if os.path.exists(path):
        try:
            with open(path) as handle:
                report = json.load(handle)
        except ValueError:
            report = {}
    report[host_name] = {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)
