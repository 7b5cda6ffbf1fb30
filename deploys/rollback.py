"""Undo the host's last flip: vLLM back to the install that flip replaced,
restarted, and checked to serve again (the same health checks as llm.py).

    pyinfra INVENTORY deploys/rollback.py --limit HOST [--data armada_rollout_id=ID]

Only a flip that still serves is undone (a second rollback changes nothing),
only one of that rollout when ``armada_rollout_id`` is given (armada upgrade
passes its own), and only to an install that is still there; a host with
nothing to undo stays as it is. The decision is the first line of the host's
health table and report ("rollback").
"""

from pyinfra import host, inventory

from armada.deploy import prepare, schedule_health_checks
from armada.health import Check
from armada.serving import rollback

run = prepare(host, inventory)
decision = rollback(run)
schedule_health_checks(run, first=(Check(host.name, "rollback", True, decision),))
