"""Pure pieces of day-2: batches, and which installs are pruned."""

from armada.serving import installs_to_prune
from armada.upgrade import batches, data_overrides, pyinfra_command


def test_batches_follow_max_unavailable():
    assert batches(["a", "b", "c"], 1) == [["a"], ["b"], ["c"]]
    assert batches(["a", "b", "c"], 2) == [["a", "b"], ["c"]]


def test_prune_keeps_serving_previous_and_newest():
    installs = ["/v/new", "/v/b", "/v/c", "/v/old-serving", "/v/d"]  # newest first
    assert installs_to_prune(installs, {"/v/new", "/v/old-serving"}, 3) == ["/v/c", "/v/d"]
    assert installs_to_prune(installs, {"/v/d"}, 2) == ["/v/b", "/v/c", "/v/old-serving"]
    assert installs_to_prune(["/v/a"], {"/v/a"}, 3) == []


def test_a_batch_of_two_hosts_limits_pyinfra_to_both(tmp_path):
    """pyinfra's own limit code says which hosts a batch's command line
    reaches: both hosts of the batch, not the third (pyinfra matches each
    --limit value as one host or group name: "h1,h2" would match none)."""
    from pyinfra_cli.cli import _apply_inventory_limit

    from armada.inventory import load_inventory

    path = tmp_path / "inv.py"
    path.write_text('serving = (["h1", "h2", "h3"], {})\n')
    command = pyinfra_command(str(path), "deploys/llm.py", ["h1", "h2"], str(tmp_path / "r.json"), [])
    limits = [command[i + 1] for i, arg in enumerate(command) if arg == "--limit"]
    assert sorted(h.name for h in _apply_inventory_limit(load_inventory(str(path)), limits)) == ["h1", "h2"]
    assert pyinfra_command(str(path), "deploys/upgrade.py", None, "r.json", []).count("--limit") == 0


def test_data_overrides_are_read_from_pyinfras_arguments():
    assert data_overrides(["--data", "armada_max_unavailable=2", "--data=vllm_version=0.31.0", "-v"]) == {
        "armada_max_unavailable": "2", "vllm_version": "0.31.0"}
    assert data_overrides(["--limit", "h1"]) == {}


def test_rollout_ids_differ_and_are_valid_data():
    from armada.keys import name
    from armada.upgrade import rollout_id

    first, second = rollout_id(), rollout_id()
    assert first != second and first.startswith("upgrade-") and name(first) is None


def test_the_rollback_decision_is_read_from_the_rollback_report(tmp_path):
    from armada import health
    from armada.upgrade import _rollback_decision

    report = str(tmp_path / "rollback.json")
    health.write_report(report, "h1", [health.Check("h1", "rollback", True, "rolled back from /a to /b"),
                                       health.Check("h1", "vLLM /health", True, "200")])
    assert _rollback_decision(report, "h1") == "rolled back from /a to /b"
    assert _rollback_decision(report, "h2") is None
    assert _rollback_decision(str(tmp_path / "none.json"), "h1") is None


def test_upgrade_finds_its_deploy_files_from_any_directory(tmp_path, monkeypatch):
    import os

    from armada.paths import shared

    monkeypatch.chdir(tmp_path)
    for deploy in ("upgrade", "llm", "rollback"):
        path = shared(f"deploys/{deploy}.py")
        assert os.path.isabs(path) and os.path.isfile(path)
