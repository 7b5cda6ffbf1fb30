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
then switches the host back to plain vLLM.

    sudo .venv/bin/python bench/lab_dynamo.py [-n 20]

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


def deploy(serving: str, limit: str) -> float:
    start = time.monotonic()
    result = subprocess.run(
        [os.path.join(BIN, "pyinfra"), "-y", "inventories/local.py", "deploys/llm.py", *limits(limit),
         "--data", "armada_health_report=/tmp/bench-dynamo-health.json"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "ARMADA_LAB_SERVING": serving})
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-4000:], file=sys.stderr)
        raise SystemExit(f"deploy ({serving}) failed (exit {result.returncode})")
    return time.monotonic() - start


def completion(port: int, timeout: float = 120) -> int:
    request = urllib.request.Request(f"http://{HOST.address}:{port}/v1/chat/completions",
                                     data=json.dumps(BODY).encode(), headers=HEADERS)
    return json.load(urllib.request.urlopen(request, timeout=timeout))["usage"]["completion_tokens"]


def latencies(port: int, count: int) -> list[float]:
    completion(port)  # warm
    times = []
    for _ in range(count):
        start = time.perf_counter()
        assert completion(port) > 0
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="requests per median")
    args = parser.parse_args()
    lab.up(log=lambda m: None)

    print(f"deploy plain vLLM (cp + serve2)      {deploy('vllm', 'armada-cp,armada-serve2'):8.1f} s", flush=True)
    direct = latencies(8000, args.n)
    print(f"vLLM direct, median of {args.n}          {statistics.median(direct) * 1000:8.1f} ms", flush=True)

    print(f"deploy switching to Dynamo            {deploy('dynamo', 'armada-serve2'):8.1f} s", flush=True)
    units = "armada-dynamo-frontend.service armada-dynamo-worker@agg0.service"
    code, _, err = lab.ssh_exec(HOST, f"systemctl restart {units}", timeout=120)
    if code != 0:
        raise SystemExit(f"restart failed: {err}")
    start = time.monotonic()
    while True:
        try:
            if completion(8080, timeout=30) > 0:
                break
        except (urllib.error.URLError, ConnectionError, OSError, KeyError, ValueError):
            pass
        if time.monotonic() - start > 900:
            raise SystemExit("no completion through the frontend within 900 s")
        time.sleep(0.5)
    first = time.monotonic() - start
    print(f"start -> first completion (frontend)  {first:8.1f} s", flush=True)
    frontend = latencies(8080, args.n)
    ratio = statistics.median(frontend) / statistics.median(direct)
    print(f"Dynamo frontend, median of {args.n}      {statistics.median(frontend) * 1000:8.1f} ms", flush=True)
    print(f"frontend / direct                     {ratio:8.2f} x")

    print(f"deploy back to plain vLLM             {deploy('vllm', 'armada-serve2'):8.1f} s", flush=True)
    print(f"\nhost: {HOST.name} (x86_64), nats/etcd on armada-cp (aarch64, emulated); machine: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
