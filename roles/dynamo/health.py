"""The dynamo role's health checks: the control plane reached from this host
(when it is another host), the frontend and every worker active, the model
listed and a real completion through the frontend, prefill workers working
(disaggregated), every worker registered in etcd, tcmalloc, the venv's torch."""

from __future__ import annotations

import base64
import json
import shlex
import time

from armada.health import (
    Check,
    control_plane_checks,
    etcd_read,
    http_json,
    process_checks,
    unit_active,
)
from armada.commands.vllm import prompt_throughput_command
from armada.parsers.vllm import prompt_throughput_seen
from armada.profile import Profile
from armada.role_support import etcd_tls, etcd_url, nats_url, run_quiet
from armada.serving import FRONTEND, WORKER, current_link, model_name, plan_workers


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun."""
    data, venv = run.data, current_link(run.data)  # what really serves: the install `current` points at
    cp_etcd = etcd_url(run.control_plane, run.cp_data)
    found = []
    if run.control_plane is not run.host:
        found += control_plane_checks(run.host, nats_url(run.control_plane, run.cp_data), cp_etcd, data,
                                      python=f"{venv}/bin/python")
    return found + dynamo_checks(run.host, data, run.profile, venv, model_name(data),
                                 plan_workers(run.host.name, run.profile, data), cp_etcd, data["vllm_ready_timeout"])


def dynamo_checks(host, data: dict, profile: Profile, venv: str, model: str, workers, etcd_url: str,
                  ready_timeout: int = 600) -> list[Check]:
    """Dynamo serving: the frontend and every worker unit active, the model
    listed by the frontend (workers register after loading it), a real chat
    completion through the frontend, every worker registered in etcd, in
    disaggregated mode each prefill worker's engine logging prompt throughput since the request,
    tcmalloc in every worker process, the venv's torch."""
    checks = [unit_active(host, FRONTEND)] + [unit_active(host, w.unit.removesuffix(".service")) for w in workers]
    base = f"http://127.0.0.1:{data['dynamo_frontend_port']}"
    wait = (f"for i in $(seq {ready_timeout}); do curl -s --noproxy '*' {base}/v1/models "
            f"| grep -q {shlex.quote(json.dumps(model))} && exit 0; sleep 1; done; exit 1")
    ok, _ = run_quiet(host, f"bash -c {shlex.quote(wait)}")
    ok, models = http_json(host, f"{base}/v1/models")
    names = [m.get("id") for m in models.get("data", [])] if ok and isinstance(models, dict) else []
    checks.append(Check(host.name, "Dynamo frontend /v1/models lists the model", model in names,
                        ", ".join(names) or f"not within {ready_timeout}s: {str(models)[:160]}"))
    prefill = [w.unit for w in workers if w.part == "prefill"]
    _, since = run_quiet(host, "date +%s")  # the host's clock: where its journal starts to count
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}
    ok, reply, waited_s = completion_until_served(host, f"{base}/v1/chat/completions", body, ready_timeout)
    tokens = reply.get("usage", {}).get("completion_tokens", 0) if ok and isinstance(reply, dict) else 0
    content = reply["choices"][0]["message"].get("content") if tokens else str(reply)[:200]
    waited = f" (after {waited_s} s of 503/404: no live worker yet)" if waited_s else ""
    checks.append(Check(host.name, "chat completion through the Dynamo frontend generates", tokens > 0,
                        f"{tokens} tokens: {content!r}{waited}"))
    for unit in prefill:
        seen = prefill_witness(host, unit, since.strip())
        checks.append(Check(host.name, f"the request went through {unit.removesuffix('.service')}", seen > 0,
                            f"its engine logged {seen} prompt tokens/s since the request"))

    if data["dynamo_discovery_backend"] == "etcd":
        prefix = f"v1/instances/{data['dynamo_namespace']}/".encode()
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        ok, seen = etcd_read(host, etcd_url, data["etcd_client_password_file"],
                             {"key": base64.b64encode(prefix).decode(), "range_end": base64.b64encode(end).decode(),
                              "keys_only": True},
                             tls=etcd_tls(data, etcd_url), user=data["etcd_client_user"])
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
    checks += process_checks(host, profile, venv, f"{WORKER}@", "Dynamo workers")
    return checks


def post_status(host, url: str, body: dict) -> tuple[int, dict | str]:
    """POST ``body`` as JSON from the host: ``(HTTP status, the answer as JSON or its text)``; status 0
    when nothing answered."""
    curl = (f"curl -sS --max-time 120 --noproxy '*' -H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(body))} -w '\\n%{{http_code}}' {shlex.quote(url)}")
    _, text = run_quiet(host, curl)
    answer, _, code = text.rpartition("\n")
    status = int(code) if code.strip().isdigit() else 0
    try:
        return status, json.loads(answer)
    except ValueError:
        return status, (answer if status else text)[-300:]


# the frontend does not serve the model yet: 503 while it knows the model but reaches no live worker
# instance, 404 (no body) once the last stale instance's lease has expired and the model is dropped,
# until the restarted worker registers it again (both seen on the lab right after etcd switched to TLS:
# the old worker could not unregister from the new etcd, its instance stayed listed for its lease's 10 s)
NOT_SERVED_YET = (503, 404)


def completion_until_served(host, url: str, body: dict, timeout: int) -> tuple[bool, dict | str, int]:
    """A chat completion, asked again every 2 s while the frontend does not serve the model yet
    (NOT_SERVED_YET, for up to ``timeout`` s): ``(answered 200, the answer, seconds spent waiting)``.
    Any other answer is final."""
    start = time.monotonic()
    status, reply = post_status(host, url, body)
    waited = status in NOT_SERVED_YET
    while status in NOT_SERVED_YET and time.monotonic() - start < timeout:
        time.sleep(2)
        status, reply = post_status(host, url, body)
    if status != 200:
        reply = f"HTTP {status}: {reply}" if status else reply
    return status == 200, reply, round(time.monotonic() - start) if waited else 0


def prefill_witness(host, unit: str, since: str, wait_s: int = 15) -> float:
    """The prompt throughput ``unit``'s vLLM engine logged since ``since`` (epoch seconds on the host),
    waiting up to ``wait_s`` for vLLM's stats line (every 10 s after activity): CPU time is no witness,
    a prefill worker holding KV blocks for a remote decode spins in vLLM's queue without any request."""
    if not since.isdigit():
        return 0.0
    wait = prompt_throughput_command(unit, since, wait_s)
    _, seen = run_quiet(host, f"bash -c {shlex.quote(wait)}")
    return prompt_throughput_seen(seen)
