"""Pure pieces of day-2: batches, and which installs are pruned."""

from armada.upgrade import batches
from roles.vllm_service import installs_to_prune


def test_batches_follow_max_unavailable():
    assert batches(["a", "b", "c"], 1) == [["a"], ["b"], ["c"]]
    assert batches(["a", "b", "c"], 2) == [["a", "b"], ["c"]]


def test_prune_keeps_serving_previous_and_newest():
    installs = ["/v/new", "/v/b", "/v/c", "/v/old-serving", "/v/d"]  # newest first
    assert installs_to_prune(installs, {"/v/new", "/v/old-serving"}, 3) == ["/v/c", "/v/d"]
    assert installs_to_prune(installs, {"/v/d"}, 2) == ["/v/b", "/v/c", "/v/old-serving"]
    assert installs_to_prune(["/v/a"], {"/v/a"}, 3) == []
