"""Upgrade, phase 1 (all hosts at once): build the new installs beside the
serving ones. Every role but the one that flips what serves runs, so each host gets the new
vLLM venv (and model) while the old install keeps serving untouched.

Phase 2 is `armada upgrade INVENTORY`: host by host (or in batches of
``armada_max_unavailable``) it runs deploys/llm.py, which flips ``current``,
restarts vLLM and checks health; on failure it runs deploys/rollback.py and
stops the rollout.
"""

from pyinfra import host, inventory

from armada.deploy import apply_roles, prepare

run = prepare(host, inventory)
apply_roles(run, build_only=True)
