"""Test inventory for a role scenario (armada.lab.scenarios): the lab's own
data (inventories/local.py) for the scenario's hosts, with the scenario's
roles. ARMADA_SCENARIO (JSON: name, hosts, roles) is set by the lifecycle."""

import json
import os
import runpy

_lab = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "..", "inventories", "local.py"))
_scenario = json.loads(os.environ["ARMADA_SCENARIO"])


def _group(name):
    hosts, data = _lab[name]
    chosen = [h for h in hosts if h[0] in _scenario["hosts"]]
    if _scenario["roles"] is not None:
        data = {**data, "armada_roles": _scenario["roles"]}
        if "vllm_service" not in _scenario["roles"]:
            data.pop("armada_control_plane", None)
    return (chosen, data)


control_plane = _group("control_plane")
serving = _group("serving")
