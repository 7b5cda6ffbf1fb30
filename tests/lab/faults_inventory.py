"""Test inventory: the lab (inventories/local.py) with extra data from the
ARMADA_TEST_DATA environment variable (JSON) for every host: the faults
tests ask for what `--data` cannot say (lists, ints)."""

import json
import os
import runpy

_lab = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "..", "inventories", "local.py"))
_extra = json.loads(os.environ.get("ARMADA_TEST_DATA", "{}"))

control_plane = (_lab["control_plane"][0], {**_lab["control_plane"][1], **_extra})
serving = (_lab["serving"][0], {**_lab["serving"][1], **_extra})
