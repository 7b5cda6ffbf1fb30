#!/usr/bin/env python3
"""Benchmark (not a test): one request at a time on the lab's tiny model, vLLM served directly, with
every core bound to OpenMP against one core left for the API server (vllm_cpu_reserved_cores 0 / 1).

bench/lab_tuning.py measures a compute-bound model under load (4 requests in flight); this measures
the other end: a short completion alone, where each decode step's result has to travel through vLLM's
API server process. On armada-serve2, alternating ``--rounds`` times, each variant deployed by armada
(``--data vllm_cpu_reserved_cores=N``): the median latency of ``-n`` completions of 1 and of 8 tokens.
Deploys the host back to its data's own setting at the end.

    sudo .venv/bin/python bench/lab_latency.py [--rounds 2] [-n 20]
"""

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from lab_dynamo import deploy, latencies  # noqa: E402

from armada.lab import hosts as lab  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="requests per median")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    lab.up(log=lambda m: None)
    rows: dict[tuple[int, int], list[float]] = {}
    try:
        for round_ in range(1, args.rounds + 1):
            for reserved in (0, 1):
                took = deploy("vllm", "armada-serve2", f"vllm_cpu_reserved_cores={reserved}")
                for tokens in (1, 8):
                    median = statistics.median(latencies(8000, args.n, tokens)) * 1000
                    rows.setdefault((reserved, tokens), []).append(median)
                    print(f"round {round_} reserved {reserved} ({took:5.1f} s deploy): {tokens} token(s) "
                          f"{median:6.1f} ms", flush=True)
    finally:
        deploy("vllm", "armada-serve2")
    print("\n| cores left for the API server | 1 token, ms | 8 tokens, ms |\n| --- | --- | --- |")
    for reserved in (0, 1):
        print(f"| {reserved} | {statistics.median(rows[(reserved, 1)]):.1f} | {statistics.median(rows[(reserved, 8)]):.1f} |")
    print(f"\nhost: armada-serve2 (x86_64), the lab's tiny model, medians of {args.n} per round, "
          f"rounds: {args.rounds}; machine: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
