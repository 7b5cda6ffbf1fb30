"""The verify step of a role scenario (armada.lab.scenarios): pytest-testinfra
over SSH on the scenario's hosts. Collected only when ARMADA_SCENARIO is set
(by `armada lab scenario NAME verify`, Molecule's verify playbook)."""

import json
import os

import pytest
import testinfra

import checks
from armada.lab import hosts as lab

SCENARIO = json.loads(os.environ.get("ARMADA_SCENARIO", "{}"))
CP = lab.HOSTS_BY_NAME["armada-cp"]


def host(name):
    return testinfra.get_host(f"paramiko://root@{lab.HOSTS_BY_NAME[name].address}", ssh_identity_file=lab.key_path())


@pytest.mark.parametrize("name", SCENARIO.get("hosts", []))
def test_scenario_hosts(name):
    roles = SCENARIO["roles"] or (["base", "tcmalloc", "nats", "etcd"] if name == CP.name
                                  else ["base", "tcmalloc", "vllm", "model", "vllm_service"])
    target = host(name)
    listen = "0.0.0.0"  # the lab's control plane listens on the lab network
    for role in roles:
        if role in ("nats", "etcd"):
            getattr(checks, role)(target, listen)
        elif role == "vllm_service":
            checks.vllm_service(target, CP.address if SCENARIO["roles"] is None else None)
        else:
            getattr(checks, role)(target)
