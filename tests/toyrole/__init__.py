"""A toy role, as a new role is written: one package declaring its contract
(armada.role.Role). tests/test_role_contract.py registers it and finds it
in `armada keys`, `armada check` and the health phase."""

from pyinfra.api import deploy
from pyinfra.operations import files

from armada.errors import DataError
from armada.health import Check
from armada.keys import Key, absolute_path
from armada.role import Role, RoleRun

KEYS = (
    Key("toy_greeting", str, "hello", "What the toy role writes into its file"),
    Key("toy_file", str, "/etc/armada/toy.txt", "Where it writes it", check=absolute_path),
)


def checks(name, data):
    if "toy" in data["armada_roles"] and not data["toy_greeting"].strip():
        yield DataError(name, "toy_greeting", data["toy_greeting"], "must say something")


@deploy("armada toy")
def apply(run: RoleRun):
    files.line(name="toy greeting", path=run.data["toy_file"], line=run.data["toy_greeting"])


def health(run: RoleRun):
    return [Check(run.host.name, "toy greets", True, run.data["toy_greeting"])]


ROLE = Role(name="toy", doc="writes a greeting (a test's role)", keys=KEYS, checks=checks, apply=apply,
            health=health)
