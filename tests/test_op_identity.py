"""pyinfra identifies an operation by the line numbers of its call stack below
the deploy file; armada adds each role's fixed place (see apply_roles)."""


def test_every_role_module_has_its_own_operation_identity():
    """pyinfra names operations by call-stack line numbers; armada adds the role's
    fixed place so that roles' operations on equal lines stay distinct."""
    from armada.deploy import role_identity, role_modules
    from armada.schema import with_defaults
    from roles.base.defaults import ALL_ROLES

    modules = role_modules(with_defaults({"armada_roles": list(ALL_ROLES)}))
    modules += role_modules(with_defaults({"armada_roles": list(ALL_ROLES), "armada_serving": "dynamo",
                                           "dynamo_version": "1.6.1", "vllm_version": "0.31.0"}))
    identities = {module: role_identity(module) for module in modules}
    assert len(set(identities.values())) == len(identities) == len(ALL_ROLES) + 1
    assert identities["roles.dynamo"] != identities["roles.vllm_service"]
