#!/usr/bin/env python3
"""Benchmark (not a test): wall times of the main deploy on the local lab.

Prints, for fresh lab hosts (root filesystem caches kept):
- first converge: `pyinfra inventories/local.py deploys/llm.py` from bare hosts;
- no-op re-converge: the same command again (only the read-only health checks run);
- pyinfra's floor: the same deploy with --dry (connect + every fact the deploy
  reads, no operation executed).

    sudo .venv/bin/python bench/lab_converge.py [--keep]

Needs root and the packages the lab needs (see README). Takes ~10 minutes.
"""

import argparse
import os
import sys

from benchlib import BIN, timed  # noqa: E402 (bench/ is the script's folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    armada, pyinfra = os.path.join(BIN, "armada"), os.path.join(BIN, "pyinfra")
    deploy = [pyinfra, "-y", "inventories/local.py", "deploys/llm.py", "--data", "armada_health_report=/tmp/bench-health.json"]

    timed("lab down (clean start)", [armada, "lab", "down"])
    timed("lab up (from cache)", [armada, "lab", "up"])
    timed("first converge", deploy)
    second = timed("no-op re-converge", deploy)
    floor = timed("pyinfra floor (--dry)", [*deploy[:2], "--dry", *deploy[2:]])
    print(f"\nhosts: armada-cp (aarch64, emulated), armada-serve (x86_64); machine: {os.cpu_count()} cores")
    print(f"re-converge over floor: {second - floor:+.1f} s (the health checks' real completion and waits)")
    if not args.keep:
        timed("lab down", [armada, "lab", "down"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
