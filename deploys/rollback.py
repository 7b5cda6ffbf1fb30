"""Roll vLLM back to the install that served before the last flip, restart it,
and check that it serves again (the same health checks as llm.py).

    pyinfra INVENTORY deploys/rollback.py --limit HOST
"""

from pyinfra import host, inventory

from armada.deploy import prepare, schedule_health_checks
from armada.serving import rollback

run = prepare(host, inventory)
rollback(run)
schedule_health_checks(run)
