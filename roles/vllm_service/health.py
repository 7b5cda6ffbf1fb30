"""The vllm_service role's health checks: the control plane reached from this
host (when it is another host), vLLM's unit, /health (stopping as soon as
the unit exited), the API key refusing, the model listed, a real chat
completion, tcmalloc in every vLLM process, the venv's torch."""

from __future__ import annotations

import shlex

from armada.health import (
    Check,
    control_plane_checks,
    http_json,
    ready_wait_script,
    shortened,
    tcmalloc_check,
    torch_check,
    unit_active,
)
from armada.profile import Profile
from armada.role_support import etcd_url, nats_url, run_quiet
from armada.serving import VLLM_UNIT, current_link, model_name


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun."""
    data, venv = run.data, current_link(run.data)  # what really serves: the install `current` points at
    found = []
    if run.control_plane is not run.host:
        found += control_plane_checks(run.host, nats_url(run.control_plane, run.cp_data),
                                      etcd_url(run.control_plane, run.cp_data), data, python=f"{venv}/bin/python")
    return found + vllm_checks(run.host, data, run.profile, venv, model_name(data), data["vllm_ready_timeout"])


def vllm_checks(host, data: dict, profile: Profile, venv: str, model: str, ready_timeout: int = 600) -> list[Check]:
    base = f"http://127.0.0.1:{data['vllm_port']}"
    checks = [unit_active(host, VLLM_UNIT)]
    ok, seen = run_quiet(host, f"bash -c {shlex.quote(ready_wait_script(base, VLLM_UNIT, ready_timeout))}")
    checks.append(Check(host.name, "vLLM /health", ok, "200" if ok else shortened(seen.strip())
                        or f"no answer within {ready_timeout}s"))
    key_file = data.get("vllm_api_key_file")
    if key_file:
        _, status = run_quiet(host, f"curl -s -o /dev/null -w '%{{http_code}}' --noproxy '*' {base}/v1/models")
        checks.append(Check(host.name, "vLLM refuses a request without the API key", status.strip() == "401",
                            f"HTTP {status.strip()}"))
    ok, models = http_json(host, f"{base}/v1/models", bearer_file=key_file)
    names = [m.get("id") for m in models.get("data", [])] if ok and isinstance(models, dict) else []
    checks.append(Check(host.name, "vLLM /v1/models lists the model", model in names, ", ".join(names) or str(models)[:200]))
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}
    ok, reply = http_json(host, f"{base}/v1/chat/completions", body=body, bearer_file=key_file)
    tokens = reply.get("usage", {}).get("completion_tokens", 0) if ok and isinstance(reply, dict) else 0
    content = reply["choices"][0]["message"].get("content") if tokens else str(reply)[:200]
    checks.append(Check(host.name, "vLLM chat completion generates", tokens > 0, f"{tokens} tokens: {content!r}"))

    if profile.tcmalloc_path:
        checks.append(tcmalloc_check(host, profile, f"{VLLM_UNIT}.service", "vLLM"))
    checks.append(torch_check(host, profile, venv))
    return checks
