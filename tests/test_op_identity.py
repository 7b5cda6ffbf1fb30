"""Every role has its own fixed place, the same on every host (it joins its
operations' identity: armada.deploy.apply_roles), Dynamo included."""

import re

from armada import registry
from armada.schema import with_defaults


def test_each_role_has_its_own_fixed_place():
    names = list(registry.listed_names())
    selected = registry.selected(with_defaults({"armada_roles": names}))
    selected += registry.selected(with_defaults({"armada_roles": names, "armada_serving": "dynamo",
                                                 "dynamo_version": "1.6.1", "vllm_version": "0.31.0"}))
    identities = {one.name: registry.identity(one) for one in selected}
    assert len(set(identities.values())) == len(identities) == len(registry.roles()) == len(names) + 1
    assert identities["dynamo"] != identities["vllm_service"]


def test_hosts_naming_different_secret_and_tls_files_plan_one_order(monkeypatch):
    """The base role hands each secret and TLS file to its owner, one operation per key, from two calls
    (0600 keys and secrets, 0644 certificates). A control plane and a serving host name different files
    (seen on the lab with ARMADA_LAB_TLS=certs: pyinfra stopped with "Cycle detected in operation
    ordering DAG" when the calls' duplicates were numbered per host): planned together, the two hosts'
    operations must fall into one order."""
    import contextlib
    from unittest import mock

    import pyinfra
    from pyinfra.api import Config, Inventory, State
    from pyinfra.api.state import StateStage
    from pyinfra.context import ctx_host, ctx_state
    from roleplan import _answer, bare_host, profile_of

    from armada.role import RoleRun
    from armada.schema import all_keys
    from roles.base import ROLE

    certs = {"nats_tls_ca_file": "/s/ca", "etcd_tls_ca_file": "/s/ca", "etcd_tls_client_cert_file": "/s/c.crt",
             "etcd_tls_client_key_file": "/s/c.key", "dynamo_etcd_cert_file": "/s/d.crt",
             "dynamo_etcd_key_file": "/s/d.key"}
    hosts = {
        "cp": {"armada_roles": ["base", "nats", "etcd"], "nats_password_file": "/s/nats",
               "etcd_password_file": "/s/etcd", "etcd_client_password_file": "/s/etcd-client",
               "nats_tls_cert_file": "/s/cp.crt", "nats_tls_key_file": "/s/cp-nats.key",
               "etcd_tls_cert_file": "/s/cp.crt", "etcd_tls_key_file": "/s/cp-etcd.key", **certs},
        "serve": {"armada_roles": ["base", "vllm", "model", "vllm_service"], "nats_password_file": "/s/nats",
                  "etcd_client_password_file": "/s/etcd-client", "vllm_api_key_file": "/s/key", **certs},
    }
    inventory = Inventory(([(name, data) for name, data in hosts.items()], {}))
    state = State(inventory, Config())
    state.current_stage = StateStage.Prepare
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("pyinfra.api.host.get_fact", _answer(bare_host("x86-lab-vm"), [])))
        stack.enter_context(mock.patch.object(pyinfra, "is_cli", False))
        stack.enter_context(ctx_state.use(state))
        for name, data in hosts.items():
            host = inventory.get_host(name)
            complete = with_defaults(data)
            profile = profile_of("x86-lab-vm", complete, name)
            run = RoleRun(host=host, inventory=inventory, profile=profile, data=complete, control_plane=host,
                          cp_data=complete, keys=all_keys(), data_of=lambda h: with_defaults(h.data.dict()),
                          profile_of=lambda h, p=profile: p)
            with ctx_host.use(host):
                ROLE.apply(run)
        state.get_op_order()  # raises on a cycle
    # one operation identity per key, whichever other files a host names: no identity shared by two keys
    # (pyinfra merges operations of one identity across hosts, whose order then depends on each host's files)
    keys_by_op = {}
    for op_hash, meta in state.op_meta.items():
        keys = {re.search(r" (\w+_file): ", name).group(1) for name in meta.names
                if re.match(r"armada base \| (secret|TLS key|TLS certificate) \w+_file: ", name)}
        if keys:
            keys_by_op[op_hash] = keys
    assert all(len(keys) == 1 for keys in keys_by_op.values()), keys_by_op
    named = {key for keys in keys_by_op.values() for key in keys}
    assert {"dynamo_etcd_key_file", "vllm_api_key_file", "etcd_password_file", "nats_tls_ca_file"} <= named, named
