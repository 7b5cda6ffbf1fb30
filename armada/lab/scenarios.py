"""Role scenarios on the lab: create, converge, idempotence, verify, destroy.

One lifecycle, two front ends: Molecule's playbooks (molecule/<scenario>/)
call ``armada lab scenario NAME STEP``, and pytest calls the same functions
(tests/test_lab_scenarios.py). Each scenario deploys some roles with
deploys/llm.py onto a FRESH lab host (``create`` resets its root
filesystem), converges twice (the second run must change nothing but the
read-only health checks), and verifies with pytest-testinfra
(tests/scenarios/test_verify.py, checks shared with the lab suite) over SSH.

The lab must be up for create (``armada lab up``); ``destroy`` takes the
whole lab down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

from armada.deploy import HEALTH_OP  # the health phase's operation, by its name in pyinfra's results
from armada.lab import hosts as lab
from armada.paths import REPO



@dataclass(frozen=True)
class Scenario:
    name: str
    hosts: tuple[str, ...]  # lab hosts it deploys (the first ones are reset at create)
    roles: tuple[str, ...] | None  # armada_roles for those hosts; None: the lab inventory's own
    fresh: tuple[str, ...]  # hosts made new at create

    @property
    def verify_tests(self) -> str:
        return os.path.join(REPO, "tests", "scenarios", "test_verify.py")


SCENARIOS = {s.name: s for s in (
    # the whole main deploy, as `pyinfra inventories/local.py deploys/llm.py`
    Scenario("llm", ("armada-cp", "armada-serve", "armada-serve2"), None, ("armada-cp", "armada-serve", "armada-serve2")),
    # one role (after base, which every role needs) on one fresh host
    Scenario("base", ("armada-serve2",), ("base",), ("armada-serve2",)),
    Scenario("tcmalloc", ("armada-serve2",), ("base", "tcmalloc"), ("armada-serve2",)),
    Scenario("nats", ("armada-cp",), ("base", "nats"), ("armada-cp",)),
    Scenario("etcd", ("armada-cp",), ("base", "etcd"), ("armada-cp",)),
    Scenario("vllm", ("armada-serve2",), ("base", "vllm"), ("armada-serve2",)),
    Scenario("model", ("armada-serve2",), ("base", "model"), ("armada-serve2",)),
    Scenario("vllm_service", ("armada-serve2",), ("base", "tcmalloc", "vllm", "model", "vllm_service"),
             ("armada-serve2",)),
)}


class ScenarioError(RuntimeError):
    pass


def scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ScenarioError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def _inventory_env(s: Scenario) -> dict[str, str]:
    return {**os.environ, "ARMADA_SCENARIO": json.dumps({"name": s.name, "hosts": list(s.hosts), "roles": s.roles})}


def changed_operations(output: str) -> dict[str, int]:
    """Operation name -> hosts it changed, from pyinfra's results table.
    Raises ValueError when the output has none (the run stopped before it)."""
    if "--> Results:" not in output:
        raise ValueError("pyinfra printed no results table: " + output[-400:])
    changed = {}
    for line in output.split("--> Results:", 1)[1].splitlines()[2:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 5 and cells[0] != "Grand total" and cells[2] not in ("-", "0"):
            changed[cells[0].split(" | ")[-1]] = int(cells[2])
    return changed


def create(name: str) -> None:
    s = scenario(name)
    lab.up()
    for host in s.fresh:
        lab.reset(lab.HOSTS_BY_NAME[host])


def converge(name: str, report: str | None = None) -> tuple[int, dict[str, int], str]:
    """Run the scenario's deploy; (exit code, operations that changed a host, output)."""
    from armada.lab.assets import ensure_assets  # the [lab] extra (numpy, tokenizers): only when converging

    s = scenario(name)
    ensure_assets()
    pyinfra = os.path.join(os.path.dirname(sys.executable), "pyinfra")
    report = report or os.path.join(lab.lab_dir(), f"scenario-{name}.json")
    result = subprocess.run(
        [pyinfra, "-y", os.path.join(REPO, "tests", "lab", "scenario_inventory.py"), os.path.join(REPO, "deploys", "llm.py"),
         "--data", f"armada_health_report={report}"],
        cwd=REPO, env=_inventory_env(s), capture_output=True, text=True, timeout=3600,
    )
    output = result.stdout + result.stderr
    try:
        changed = {op: n for op, n in changed_operations(output).items() if op != HEALTH_OP}
    except ValueError:
        changed = {}  # a run that stopped early: its exit code says so
    return result.returncode, changed, output


def verify(name: str) -> int:
    """pytest-testinfra over SSH, on the scenario's hosts."""
    s = scenario(name)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", s.verify_tests],
                          cwd=REPO, env=_inventory_env(s)).returncode


def destroy(name: str) -> None:
    scenario(name)
    lab.down()


def run_step(name: str, step: str) -> int:
    """The CLI front end (`armada lab scenario NAME STEP`), used by Molecule."""
    if step == "create":
        create(name)
        return 0
    if step in ("converge", "idempotence"):
        code, changed, output = converge(name)
        print(output[-6000:])
        # Molecule's converge task reads this line (changed_when); idempotence fails on a change
        print(f"armada: changed {sum(changed.values())} operation(s): {', '.join(sorted(changed)) or '-'}")
        if step == "idempotence" and changed:
            return 1
        return code
    if step == "verify":
        return verify(name)
    if step == "destroy":
        destroy(name)
        return 0
    raise ScenarioError(f"unknown step {step!r}: create, converge, idempotence, verify, destroy")
