"""What every deploy does first: check all data, then read facts and decide.

Deploy files call :func:`prepare` at their top. pyinfra runs a deploy file
once per host while it *plans* (nothing runs on hosts yet), so raising here
stops the whole run before any operation changes any host.
"""

from __future__ import annotations

from pyinfra import logger
from pyinfra.api.exceptions import PyinfraError

from armada.facts import HostFacts
from armada.inventory import host_data, model_bytes, validate_inventory
from armada.profile import Profile, build_profile
from armada.schema import DataError


class ArmadaDataError(PyinfraError):
    """Bad inventory data: the run stops before any host is changed."""


_checked: set[int] = set()


def check_inventory(inventory) -> None:
    """Validate every host's data once per run; raise with every error found."""
    if id(inventory) in _checked:
        return
    errors = validate_inventory(inventory)
    if errors:
        lines = "\n".join(f"  - {e}" for e in errors)
        raise ArmadaDataError(f"{len(errors)} data error(s); nothing was changed on any host:\n{lines}")
    _checked.add(id(inventory))


def host_profile(host) -> Profile:
    """This host's profile from its facts and data (read-only on the host)."""
    facts = host.get_fact(HostFacts)
    data = host_data(host)
    try:
        profile = build_profile(host.name, facts, data, model_bytes(data))
    except DataError as exc:
        raise ArmadaDataError(f"{exc}; nothing was changed on this host") from None
    return profile


def prepare(host, inventory) -> Profile:
    check_inventory(inventory)
    profile = host_profile(host)
    for name, reason in profile.reasons.items():
        logger.info(f"{host.print_prefix}{name} = {getattr(profile, name, None)!r}: {reason}")
    return profile
