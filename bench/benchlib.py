"""What the bench/ scripts share: the repository root, the venv's bin folder,
and one timed command (its wall time printed; its output shown and the
script stopped when it fails)."""

import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def children_cpu_s() -> float:
    """CPU seconds (user + system) this process's finished children have used so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of every core of this machine so far (/proc/stat)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def timed(label: str, command: list[str], indent: str = "", env: dict | None = None, with_cpu: bool = False):
    """Run ``command``, print its wall time (and the CPU it used on this machine: for pyinfra, the
    control side's share); return the wall time, or (wall, cpu) ``with_cpu``."""
    start, cpu, (busy, total) = time.monotonic(), children_cpu_s(), machine_cpu()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    elapsed, cpu = time.monotonic() - start, children_cpu_s() - cpu
    busy_after, total_after = machine_cpu()
    busy_share = (busy_after - busy) / max(total_after - total, 1)
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-4000:], file=sys.stderr)
        raise SystemExit(f"{label} failed (exit {result.returncode})")
    print(f"{indent}{label:<{28 - len(indent)}} {elapsed:8.1f} s  (its own CPU {cpu:6.1f} s; "
          f"the machine's cores {busy_share:4.0%} busy)", flush=True)
    return (elapsed, cpu) if with_cpu else elapsed
