"""``armada upgrade INVENTORY``: a rolling upgrade that stops, and rolls back,
at the first host that does not serve.

1. ``deploys/upgrade.py`` on every host at once: the new installs are built
   (and smoke-tested) beside the serving ones (nothing restarts).
2. Host by host, in batches of ``armada_max_unavailable``: ``deploys/llm.py
   --limit BATCH`` flips ``current``, restarts vLLM and runs the health checks.
   Every flip records this rollout's id (``armada_rollout_id``). A batch that
   fails runs ``deploys/rollback.py`` with the same id: a host this rollout
   flipped returns to the install the flip replaced (restart, health checks
   again); a host that failed before its flip is left serving what it served.
   No further host is touched.
3. A summary: which host runs what, which rolled back, which was not flipped, and why.

The deploy files are found through the installed package (armada.paths), so
it runs from any directory.

Re-running after a fix continues where it stopped: hosts already upgraded
converge with no change.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from armada import registry
from armada.inventory import host_data, load_inventory
from armada.paths import shared
from armada.schema import with_defaults


@dataclass
class HostResult:
    host: str
    state: str  # upgraded | rolled back | not flipped | rollback failed | not touched
    detail: str = ""


def pyinfra_command(inventory: str, deploy: str, limit: list[str] | None, report: str, extra: list[str]) -> list[str]:
    """pyinfra's command line for one step (pure). One ``--limit`` per host:
    pyinfra matches each value against host and group names, so "a,b" would
    match no host at all."""
    command = [os.path.join(os.path.dirname(sys.executable), "pyinfra"), "-y", inventory, deploy,
               "--data", f"armada_health_report={report}", *extra]
    for name in limit or ():
        command += ["--limit", name]
    return command


def _pyinfra(inventory: str, deploy: str, limit: list[str] | None, report: str, extra: list[str]) -> int:
    command = pyinfra_command(inventory, deploy, limit, report, extra)
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(command).returncode


def _failed_checks(report: str, host: str) -> str:
    try:
        with open(report) as handle:
            checks = json.load(handle)[host]["checks"]
    except (OSError, ValueError, KeyError):
        return "the deploy failed before its health checks (see pyinfra's output)"
    return "; ".join(f"{c['check']}: {c['seen']}" for c in checks if not c["ok"]) or "no failed check"


def _rollback_decision(report: str, host: str) -> str | None:
    """What deploys/rollback.py decided for ``host`` (its "rollback" line), None when it did not get that far."""
    try:
        with open(report) as handle:
            checks = json.load(handle)[host]["checks"]
    except (OSError, ValueError, KeyError):
        return None
    return next((c["seen"] for c in checks if c["check"] == "rollback"), None)


def rollout_id() -> str:
    """A new rollout's id: when it started, and a random part (two runs in one second differ)."""
    return f"upgrade-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def data_overrides(extra: list[str]) -> dict[str, str]:
    """The ``--data KEY=VALUE`` pairs of pyinfra arguments (pure)."""
    pairs = [extra[i + 1] for i, arg in enumerate(extra[:-1]) if arg == "--data"]
    pairs += [arg.split("=", 1)[1] for arg in extra if arg.startswith("--data=")]
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def batches(hosts: list[str], size: int) -> list[list[str]]:
    return [hosts[i:i + size] for i in range(0, len(hosts), size)]


def run_upgrade(inventory_path: str, extra: list[str]) -> tuple[int, list[HostResult]]:
    inventory = load_inventory(inventory_path)
    serving = [h for h in inventory if any(r.serves for r in registry.selected(with_defaults(host_data(h))))]
    if not serving:
        raise SystemExit(f"armada upgrade: no host of {inventory_path} runs a serving role "
                         f"({', '.join(r.name for r in registry.roles() if r.serves)})")
    # pyinfra's --data overrides every host's data: the batch size too
    size = int(data_overrides(extra).get("armada_max_unavailable")
               or with_defaults(host_data(serving[0]))["armada_max_unavailable"])
    names = [h.name for h in serving]
    results = {name: HostResult(name, "not touched") for name in names}
    work = tempfile.mkdtemp(prefix="armada-upgrade-")

    if _pyinfra(inventory_path, shared("deploys/upgrade.py"), None, f"{work}/build.json", extra) != 0:
        for result in results.values():
            result.detail = "building the new installs failed; nothing was flipped"
        return 1, list(results.values())

    rollout = rollout_id()
    print(f"--> Rollout {rollout}: {len(names)} host(s), {size} at a time", flush=True)
    flip_args = [*extra, "--data", f"armada_rollout_id={rollout}"]
    for index, batch in enumerate(batches(names, size)):
        report = f"{work}/batch-{index}.json"
        if _pyinfra(inventory_path, shared("deploys/llm.py"), batch, report, flip_args) == 0:
            for name in batch:
                results[name] = HostResult(name, "upgraded")
            continue
        why = {name: _failed_checks(report, name) for name in batch}
        back = f"{work}/rollback-{index}.json"
        ok = _pyinfra(inventory_path, shared("deploys/rollback.py"), batch, back, flip_args) == 0
        for name in batch:
            decision = _rollback_decision(back, name)
            if not ok:
                state, serves = "rollback failed", _failed_checks(back, name)
            elif decision and decision.startswith("rolled back"):
                state, serves = "rolled back", f"{decision}; it serves again"
            else:
                state, serves = "not flipped", f"{decision or 'no rollback decision'}; it serves"
            results[name] = HostResult(name, state, f"{why[name]} -> {serves}")
        return 1, list(results.values())
    return 0, list(results.values())


def main(args) -> int:
    extra = list(args.pyinfra_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    code, results = run_upgrade(args.inventory, extra)
    print("\n--> Upgrade summary")
    width = max(len(r.host) for r in results)
    for result in results:
        print(f"{result.host:<{width}}  {result.state:<15}  {result.detail}")
    return code
