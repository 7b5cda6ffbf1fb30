#!/usr/bin/env python3
"""Benchmark (not a test): NVIDIA Dynamo against plain vLLM on one lab host.

On armada-serve2 (x86_64; nats and etcd on armada-cp), prints:
- per-request latency of a short chat completion served by vLLM directly
  (plain serving, armada-vllm.service), median of N;
- the deploy switching the host to Dynamo (ARMADA_LAB_SERVING=dynamo);
- time from (re)starting Dynamo's frontend and worker to the first
  completion through the frontend;
- per-request latency through the frontend, median of N, and its ratio to
  vLLM direct;
- where the frontend's extra time goes: for each request plane asked
  (``--planes nats,tcp``: frontend -> worker through the control plane's
  nats, or straight over TCP; DYN_REQUEST_PLANE, data key
  dynamo_request_plane) and each completion length (``--tokens 1,8``: a
  per-request cost shows at 1 token, a per-token one grows with them),
  median latency direct and through the frontend, and the difference;
then switches the host back to plain vLLM.

    sudo .venv/bin/python bench/lab_dynamo.py [-n 20] [--planes nats,tcp] [--tokens 1,8]

Needs root and the lab (armada lab up); deploys the lab first if needed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from armada.lab import hosts as lab  # noqa: E402
from armada.lab.assets import MODEL_NAME  # noqa: E402
from armada.lab.client import API_KEY_SECRET  # noqa: E402

BIN = os.path.dirname(sys.executable)
HOST = lab.HOSTS_BY_NAME["armada-serve2"]
# the lab's vLLM answers only with its API key (Dynamo's frontend has none and ignores it)
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {lab.lab_secret(API_KEY_SECRET)}"}
BODY = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8,
        "temperature": 0}


def limits(hosts: str) -> list[str]:
    """pyinfra takes one --limit per host."""
    return [arg for name in hosts.split(",") for arg in ("--limit", name)]


def deploy(serving: str, limit: str, *data: str) -> float:
    start = time.monotonic()
    result = subprocess.run(
        [os.path.join(BIN, "pyinfra"), "-y", "inventories/local.py", "deploys/llm.py", *limits(limit),
         "--data", "armada_health_report=/tmp/bench-dynamo-health.json", *(a for d in data for a in ("--data", d))],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "ARMADA_LAB_SERVING": serving})
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-4000:], file=sys.stderr)
        raise SystemExit(f"deploy ({serving}) failed (exit {result.returncode})")
    return time.monotonic() - start


def completion(port: int, timeout: float = 120, tokens: int = 8) -> int:
    request = urllib.request.Request(f"http://{HOST.address}:{port}/v1/chat/completions",
                                     data=json.dumps({**BODY, "max_tokens": tokens}).encode(), headers=HEADERS)
    return json.load(urllib.request.urlopen(request, timeout=timeout))["usage"]["completion_tokens"]


def latencies(port: int, count: int, tokens: int = 8) -> list[float]:
    completion(port, tokens=tokens)  # warm
    times = []
    for _ in range(count):
        start = time.perf_counter()
        assert completion(port, tokens=tokens) > 0
        times.append(time.perf_counter() - start)
    return times


def restart_dynamo() -> float:
    """Restart the frontend and the worker; seconds until a completion comes through the frontend."""
    units = "armada-dynamo-frontend.service armada-dynamo-worker@agg0.service"
    code, _, err = lab.ssh_exec(HOST, f"systemctl restart {units}", timeout=120)
    if code != 0:
        raise SystemExit(f"restart failed: {err}")
    start = time.monotonic()
    while True:
        try:
            if completion(8080, timeout=30) > 0:
                return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, OSError, KeyError, ValueError):
            pass
        if time.monotonic() - start > 900:
            raise SystemExit("no completion through the frontend within 900 s")
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="requests per median")
    parser.add_argument("--planes", default="nats,tcp", help="request planes to compare (dynamo_request_plane)")
    parser.add_argument("--tokens", default="1,8", help="completion lengths to compare")
    args = parser.parse_args()
    lengths = [int(t) for t in args.tokens.split(",")]
    lab.up(log=lambda m: None)

    print(f"deploy plain vLLM (cp + serve2)      {deploy('vllm', 'armada-cp,armada-serve2'):8.1f} s", flush=True)
    direct = latencies(8000, args.n)
    print(f"vLLM direct, median of {args.n}          {statistics.median(direct) * 1000:8.1f} ms", flush=True)

    direct_by = {tokens: statistics.median(latencies(8000, args.n, tokens)) for tokens in lengths}

    print(f"deploy switching to Dynamo            {deploy('dynamo', 'armada-serve2'):8.1f} s", flush=True)
    print(f"start -> first completion (frontend)  {restart_dynamo():8.1f} s", flush=True)
    frontend = latencies(8080, args.n)
    ratio = statistics.median(frontend) / statistics.median(direct)
    print(f"Dynamo frontend, median of {args.n}      {statistics.median(frontend) * 1000:8.1f} ms", flush=True)
    print(f"frontend / direct                     {ratio:8.2f} x", flush=True)

    rows = []
    for plane in args.planes.split(","):
        took = deploy("dynamo", "armada-serve2", f"dynamo_request_plane={plane}")
        ready = restart_dynamo()
        print(f"request plane {plane}: deploy {took:.1f} s, restart -> first completion {ready:.1f} s", flush=True)
        for tokens in lengths:
            through = statistics.median(latencies(8080, args.n, tokens))
            rows.append((plane, tokens, direct_by[tokens], through))
            print(f"  {tokens:3d} token(s): direct {direct_by[tokens] * 1000:6.1f} ms, frontend {through * 1000:6.1f} ms, "
                  f"extra {(through - direct_by[tokens]) * 1000:5.1f} ms ({through / direct_by[tokens]:.2f}x)", flush=True)
    print("\n| request plane | tokens | direct ms | frontend ms | extra ms | ratio |\n| --- | --- | --- | --- | --- | --- |")
    for plane, tokens, direct_s, through in rows:
        print(f"| {plane} | {tokens} | {direct_s * 1000:.1f} | {through * 1000:.1f} | {(through - direct_s) * 1000:.1f} | "
              f"{through / direct_s:.2f}x |")

    print(f"deploy back to plain vLLM             {deploy('vllm', 'armada-serve2'):8.1f} s", flush=True)
    print(f"\nhost: {HOST.name} (x86_64), nats/etcd on armada-cp (aarch64, emulated); machine: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
