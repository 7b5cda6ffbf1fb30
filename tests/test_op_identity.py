"""Every role has its own fixed place, the same on every host (it joins its
operations' identity: armada.deploy.apply_roles), Dynamo included."""

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
