#!/usr/bin/env python3
"""Benchmark (not a test): how the main deploy scales with hosts, on the lab's light hosts.

For each fleet size N (default 1, 4 and 16): `armada lab up --light N` (x86_64
hosts from the same root filesystem cache, own netns, no vLLM), then
`deploys/llm.py --limit light` (their roles: base) timed three ways:

- first converge (bare hosts: apt through the lab's proxy, users, folders);
- no-op re-converge (the same command again);
- pyinfra's floor: the same deploy with --dry (connect + every fact, no operation);

and the memory the N booted hosts take (MemAvailable before and after their
boot, divided by N) and their boot time. The light hosts are removed after
each size; the lab's three main hosts stay up (they are not deployed here).

    sudo .venv/bin/python bench/lab_fleet.py [--sizes 1,4,16]

Needs root and the lab's packages (see README). Prints one table.
"""

import argparse
import os
import sys
import time

from benchlib import BIN, timed  # noqa: E402 (bench/ is the script's folder)


def mem_available_mib() -> float:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    raise SystemExit("no MemAvailable in /proc/meminfo")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,16", help="fleet sizes, comma separated (default 1,4,16)")
    args = parser.parse_args()
    armada, pyinfra = os.path.join(BIN, "armada"), os.path.join(BIN, "pyinfra")
    deploy = [pyinfra, "-y", "inventories/local.py", "deploys/llm.py", "--limit", "light",
              "--data", "armada_health_report=/tmp/bench-fleet-health.json"]
    rows = []
    timed("lab up, no light host", [armada, "lab", "up", "--light", "0"])
    for size in (int(n) for n in args.sizes.split(",")):
        print(f"{size} light host(s):", flush=True)
        before = mem_available_mib()
        boot = timed("lab up --light", [armada, "lab", "up", "--light", str(size)], indent="  ")
        time.sleep(5)  # let the hosts' services settle before reading memory
        per_host = (before - mem_available_mib()) / size
        first, first_cpu = timed("first converge", deploy, indent="  ", with_cpu=True)
        noop, noop_cpu = timed("no-op re-converge", deploy, indent="  ", with_cpu=True)
        dry = timed("--dry", [*deploy[:2], "--dry", *deploy[2:]], indent="  ")
        rows.append((size, boot, per_host, first, first_cpu, noop, noop_cpu, dry))
        timed("light hosts removed", [armada, "lab", "up", "--light", "0"], indent="  ")
    print(f"\nmachine: {os.cpu_count()} cores; roles: base (no vLLM)")
    print("pyinfra CPU: what the pyinfra process itself used on this machine (the control side); the rest of "
          "the wall time is the hosts' own work (apt, dpkg, useradd), which here shares the same cores")
    print("| light hosts | boot | memory per host | first converge (pyinfra CPU) | no-op re-converge (pyinfra CPU) "
          "| --dry |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size, boot, per_host, first, first_cpu, noop, noop_cpu, dry in rows:
        print(f"| {size} | {boot:.1f} s | {per_host:.0f} MiB | {first:.1f} s ({first_cpu:.1f} s) | {noop:.1f} s "
              f"({noop_cpu:.1f} s) | {dry:.1f} s |")
    if rows:
        one = rows[0]
        for size, _, _, first, _, noop, _, _ in rows[1:]:
            print(f"{size} hosts vs {one[0]}: first converge {first / one[3]:.2f}x, no-op {noop / one[5]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
