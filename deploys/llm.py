"""The main deploy: take each host from bare OS to a serving vLLM.

    pyinfra inventories/lab.py deploys/llm.py

It starts by validating every host's data (one error list, nothing changed
on any host when there is one), reads each host's facts and builds its
serving profile (every decision is logged with its reason), then runs the
host's roles (``armada_roles``) in the registry's order (armada.registry): base,
nvidia, tcmalloc, nats, etcd, vllm, model, vllm_service or dynamo; and ends with the health checks (read-only): a table
per host and a JSON report, non-zero exit when any check fails.
"""

from pyinfra import host, inventory

from armada.deploy import apply_roles, prepare, schedule_health_checks

run = prepare(host, inventory)
apply_roles(run)
schedule_health_checks(run)
