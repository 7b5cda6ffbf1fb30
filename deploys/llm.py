"""The main deploy: take each host from bare OS to a serving vLLM.

    pyinfra inventories/lab.py deploys/llm.py

It starts by validating every host's data (one error list, nothing changed
on any host when there is one), reads each host's facts and builds its
serving profile; every decision is logged with its reason. The roles that
act on the profile are composed below, in order.
"""

from pyinfra import host, inventory

from armada.deploy import prepare

profile = prepare(host, inventory)
