"""Health checks only (read-only): the same checks that end deploys/llm.py.

    pyinfra inventories/lab.py deploys/health.py
"""

from pyinfra import host, inventory

from armada.deploy import prepare, schedule_health_checks

run = prepare(host, inventory)
schedule_health_checks(run)
