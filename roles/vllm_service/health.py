"""The vllm_service role's health checks: the control plane reached from this
host (when it is another host), vLLM's unit, /health (stopping as soon as
the unit exited), the API key refusing, the model listed, a real chat
completion, tcmalloc in every vLLM process, the venv's torch."""

from __future__ import annotations

import shlex

from armada.health import (
    Check,
    concurrently,
    control_plane_checks,
    http_json,
    ready_wait_script,
    shortened,
    process_checks,
    unit_active,
)
from armada.profile import Profile
from armada.role_support import etcd_url, nats_url, run_quiet
from armada.serving import VLLM_UNIT, current_link, model_name


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun. The control plane's checks and vLLM's run at once."""
    data, venv = run.data, current_link(run.data)  # what really serves: the install `current` points at
    calls = [lambda: vllm_checks(run.host, data, run.profile, venv, model_name(data), data["vllm_ready_timeout"])]
    if run.control_plane is not run.host:
        calls.insert(0, lambda: control_plane_checks(run.host, nats_url(run.control_plane, run.cp_data),
                                                     etcd_url(run.control_plane, run.cp_data), data,
                                                     python=f"{venv}/bin/python"))
    return [check for group in concurrently(*calls) for check in group]


def vllm_checks(host, data: dict, profile: Profile, venv: str, model: str, ready_timeout: int = 600) -> list[Check]:
    """The unit and /health (waited for), then every other check at once: the API key refusing, the
    model listed, a real chat completion, tcmalloc in every vLLM process, the venv's torch."""
    base = f"http://127.0.0.1:{data['vllm_port']}"
    key_file = data.get("vllm_api_key_file")
    active, (ok, seen) = concurrently(
        lambda: unit_active(host, VLLM_UNIT),
        lambda: run_quiet(host, f"bash -c {shlex.quote(ready_wait_script(base, VLLM_UNIT, ready_timeout))}"))
    checks = [active, Check(host.name, "vLLM /health", ok, "200" if ok else shortened(seen.strip())
                            or f"no answer within {ready_timeout}s")]

    def refuses() -> Check:
        _, status = run_quiet(host, f"curl -s -o /dev/null -w '%{{http_code}}' --noproxy '*' {base}/v1/models")
        return Check(host.name, "vLLM refuses a request without the API key", status.strip() == "401",
                     f"HTTP {status.strip()}")

    def listed() -> Check:
        ok, models = http_json(host, f"{base}/v1/models", bearer_file=key_file)
        names = [m.get("id") for m in models.get("data", [])] if ok and isinstance(models, dict) else []
        return Check(host.name, "vLLM /v1/models lists the model", model in names,
                     ", ".join(names) or str(models)[:200])

    def generates() -> Check:
        body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8,
                "temperature": 0}
        ok, reply = http_json(host, f"{base}/v1/chat/completions", body=body, bearer_file=key_file)
        tokens = reply.get("usage", {}).get("completion_tokens", 0) if ok and isinstance(reply, dict) else 0
        content = reply["choices"][0]["message"].get("content") if tokens else str(reply)[:200]
        return Check(host.name, "vLLM chat completion generates", tokens > 0, f"{tokens} tokens: {content!r}")

    calls = [refuses] if key_file else []
    calls += [listed, generates]
    found = concurrently(*calls, lambda: process_checks(host, profile, venv, f"{VLLM_UNIT}.service", "vLLM"))
    return checks + found[:-1] + found[-1]
