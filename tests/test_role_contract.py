"""Adding a role touches only its own package and the registry: a toy role
from a test package (tests/toyrole), registered, is in `armada keys`, its
checks in `armada check`, its operations in the deploy's plan, its checks in
the health phase; nothing central names it."""

import textwrap

import pytest
from pyinfra.api import Inventory
from roleplan import plan, profile_of
from toyrole import ROLE as TOY

from armada import cli, deploy, registry


@pytest.fixture
def toy():
    registry.register(TOY)
    yield TOY
    registry.unregister(TOY.name)


def write_inventory(tmp_path, greeting):
    path = tmp_path / f"inventory_{len(list(tmp_path.iterdir()))}.py"
    path.write_text(textwrap.dedent(f"""
        toys = (["t1"], {{"armada_roles": ["base", "toy"], "toy_greeting": {greeting!r}}})
    """))
    return str(path)


def test_its_keys_are_in_armada_keys(toy, capsys):
    assert cli.main(["keys"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "`toy_" in line]
    assert len(rows) == 2 and "| toy |" in rows[0] and "What the toy role writes" in rows[0]
    assert "toy" in registry.composition_key().doc  # armada_roles names it


def test_armada_check_runs_its_checks(toy, tmp_path, capsys):
    assert cli.main(["check", write_inventory(tmp_path, "hi")]) == 0
    assert cli.main(["check", write_inventory(tmp_path, "  ")]) == 2
    assert "host 't1': toy_greeting = '  ': must say something" in capsys.readouterr().err


def test_without_registration_it_is_an_unknown_role(tmp_path, capsys):
    assert cli.main(["check", write_inventory(tmp_path, "hi")]) == 2
    err = capsys.readouterr().err
    assert "unknown role(s) toy" in err and "unknown data key" in err


def test_the_deploy_runs_it_and_the_health_phase_asks_it(toy):
    data = {"armada_roles": ["base", "toy"], "toy_greeting": "hi"}
    assert plan(toy, data).op("toy greeting").runs("/etc/armada/toy.txt")
    inventory = Inventory(([("t1", data)], {}))
    host = inventory.get_host("t1")
    assert toy in registry.selected(deploy.host_data_complete(host))
    run = deploy.role_run(host, inventory, profile_of("x86-lab-vm", deploy.host_data_complete(host), "t1"))
    seconds = {}
    checks = deploy.collect_health(run, seconds)
    assert [(c.check, c.ok, c.seen) for c in checks if c.check == "toy greets"] == [("toy greets", True, "hi")]
    # each role's health time, for the report (where a host's health time goes)
    assert "toy" in seconds and 0 <= seconds["toy"] < 60
