"""What the bench/ scripts share: the repository root, the venv's bin folder,
and one timed command (its wall time printed; its output shown and the
script stopped when it fails)."""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def timed(label: str, command: list[str], indent: str = "", env: dict | None = None) -> float:
    start = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-4000:], file=sys.stderr)
        raise SystemExit(f"{label} failed (exit {result.returncode})")
    print(f"{indent}{label:<{28 - len(indent)}} {elapsed:8.1f} s", flush=True)
    return elapsed
