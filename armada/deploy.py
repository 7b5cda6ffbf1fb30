"""What every deploy does: check all data, read facts and decide, run the
host's roles, check health. It iterates the registry and names no role.

Deploy files call :func:`prepare` at their top. pyinfra runs a deploy file
once per host while it *plans* (nothing runs on hosts yet), so raising here
stops the whole run before any operation changes any host.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from pyinfra import logger
from pyinfra.operations import python

from armada import health, registry
from armada.errors import ArmadaDataError, DataError, stop_on
from armada.facts.host import HostSnapshot
from armada.facts.secrets import PemFile, SecretFile
from armada.facts.urls import UrlStatus
from armada.inventory import host_data, validate_inventory
from armada.keys import file_reader
from armada.masking import mask_url
from armada.profile import Profile, build_profile
from armada.role import RoleRun
from armada.role_support import control_plane_host, proxy_for
from armada.schema import all_keys, secret_file_keys, tls_file_keys, with_defaults
from armada.serving import model_bytes

HEALTH_OP = "armada health checks (read-only)"

_checked: set[int] = set()


def check_inventory(inventory) -> None:
    """Validate every host's data once per run; raise with every error found."""
    if id(inventory) in _checked:
        return
    errors = validate_inventory(inventory)
    if not errors:
        # a fresh report for this run, naming every host of the run until its
        # health checks replace its entry: a host that never connected, or
        # whose run stopped midway, stays in the report as failed
        state = inventory.state
        in_run = [(h, with_defaults(host_data(h))["armada_health_report"]) for h in inventory
                  if state is None or state.is_host_in_limit(h)]
        for report in {report for _, report in in_run}:
            if os.path.exists(report):
                os.remove(report)
        for host, report in in_run:
            connected = state is None or host in state.active_hosts
            seen = ("the run stopped on this host before its health checks (see pyinfra's output)" if connected
                    else "could not connect")
            health.write_report(report, host.name,
                                [health.Check(host.name, "run reached the health checks", False, seen)])
    stop_on(errors, "data error(s)")
    _checked.add(id(inventory))


def host_data_complete(host) -> dict:
    """The host's data with every key's default filled in (validated at deploy start)."""
    return with_defaults(host_data(host))


def host_profile(host) -> Profile:
    """This host's profile from its facts and data (read-only on the host)."""
    data = host_data_complete(host)
    try:
        return build_profile(host.name, host.get_fact(HostSnapshot), data, model_bytes(data))
    except DataError as exc:
        raise ArmadaDataError(f"{exc}; nothing was changed on this host") from None


def role_run(host, inventory, profile: Profile) -> RoleRun:
    """What the host's roles are given (armada.role.RoleRun)."""
    data = host_data_complete(host)
    control_plane = control_plane_host(host, data, inventory)
    return RoleRun(host=host, inventory=inventory, profile=profile, data=data, control_plane=control_plane,
                   cp_data=host_data_complete(control_plane), keys=all_keys(), data_of=host_data_complete,
                   profile_of=host_profile)


def urls_to_check(data: dict, profile: Profile) -> list[tuple[str, str]]:
    """``(key, url)`` of every URL this host's roles will fetch from (a pure decision)."""
    return [pair for one in registry.selected(data) if one.urls for pair in one.urls(data, profile)]


def check_urls(host, data: dict, profile: Profile) -> None:
    """Every URL the run needs must answer from the host itself (through its
    proxy), before anything changes: a mirror that is down or mistyped
    stops the run here, naming host, key and value."""
    errors = []
    for key, url in urls_to_check(data, profile):
        problem = host.get_fact(UrlStatus, url=url, proxy=proxy_for(url, data))
        if problem and problem.startswith("untrusted certificate") and data["armada_ca_certs"]:
            continue  # a server answered; the base role installs armada_ca_certs before any download
        if problem:
            errors.append(DataError(host.name, key, url, problem))
    stop_on(errors, "unreachable URL(s)")


def check_secrets(host, data: dict) -> None:
    """Every secret file the host's data names (any role's key holding one)
    exists on the host and holds one usable secret; every TLS file holds a
    PEM block of its kind."""
    errors = []
    keys = all_keys()
    for key in secret_file_keys():
        if data[key]:
            problem = host.get_fact(SecretFile, path=data[key], service_user=file_reader(keys[key], keys, data))
            if problem:
                errors.append(DataError(host.name, key, data[key], problem))
    for key, kind in tls_file_keys().items():
        if data[key]:
            problem = host.get_fact(PemFile, path=data[key], kind=kind, service_user=file_reader(keys[key], keys, data))
            if problem:
                errors.append(DataError(host.name, key, data[key], problem))
    stop_on(errors, "unusable secret file(s)")


def check_roles(run: RoleRun) -> None:
    """Each role's checks that need the host's facts (a disk with room, a
    package for this OS, workers that fit): before any change."""
    stop_on([error for one in registry.selected(run.data) if one.preflight for error in one.preflight(run)],
            "host problem(s)")


def prepare(host, inventory) -> RoleRun:
    """Check everything, decide, log each decision with its reason; what the roles are given."""
    check_inventory(inventory)
    run = role_run(host, inventory, host_profile(host))
    if run.data["armada_check_urls"]:
        check_urls(host, run.data, run.profile)
    check_roles(run)
    check_secrets(host, run.data)
    for name, reason in run.profile.reasons.items():
        logger.info(mask_url(f"{host.print_prefix}{name} = {getattr(run.profile, name, None)!r}: {reason}"))
    return run


def collect_health(run: RoleRun, seconds: dict[str, float] | None = None) -> list[health.Check]:
    """Every check of every role the host runs, listed in deploy order; the roles' checks run at once
    (each only reads, each waits for its own service). ``seconds``, when given, gets each role's wall
    time (where a host's health time goes)."""
    def timed(one):
        def run_role():
            start = time.monotonic()
            checks = one.health(run)
            if seconds is not None:
                seconds[one.name] = round(time.monotonic() - start, 3)
            return checks
        return run_role

    roles = [one for one in registry.selected(run.data) if one.health]
    found = health.concurrently(*(timed(one) for one in roles))
    if seconds is not None:  # in deploy order, whichever finished first
        ordered = {one.name: seconds[one.name] for one in roles}
        seconds.clear()
        seconds.update(ordered)
    return [check for checks in found for check in checks]


def run_health_checks(run: RoleRun, first: tuple[health.Check, ...] = ()) -> None:
    """Health of one host after the run (called through python.call); ``first``: what the
    deploy itself has to report (a rollback's decision), listed before the roles' checks."""
    seconds: dict[str, float] = {}
    checks = [*first, *collect_health(run, seconds)]
    health.write_report(run.data["armada_health_report"], run.host.name, checks, seconds)
    timing = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    print(f"\n--> Health of {run.host.name} ({timing})\n{health.render_table(checks)}\n", flush=True)
    failed = [c for c in checks if not c.ok]
    if failed:
        raise RuntimeError(f"{run.host.name}: {len(failed)} health check(s) failed: "
                           + "; ".join(f"{c.check} (seen: {c.seen[-160:]})" for c in failed))


def schedule_health_checks(run: RoleRun, first: tuple[health.Check, ...] = ()) -> None:
    python.call(name=HEALTH_OP, function=run_health_checks, run=run, first=first)


def apply_roles(run: RoleRun, build_only: bool = False) -> None:
    """Run the host's roles in the registry's order; ``build_only``: all but the
    role that flips what serves (an upgrade's first phase builds beside it)."""
    if build_only:
        run = replace(run, build_only=True)
    for one in registry.selected(run.data):
        if one.apply is None or (build_only and one.serves):
            continue
        # pyinfra names an operation by the line numbers of its call stack below
        # the deploy file, not by file: every role is called from the line
        # below, so roles' operations on equal lines shared an identity. A host
        # that skipped one (an install already done) then moved the next onto
        # it, and hosts in different states made the run's order circular
        # ("Cycle detected in operation ordering DAG"). The role's fixed place
        # joins the identity (pyinfra appends host.loop_position to it).
        run.host.loop_position.append(registry.identity(one))
        try:
            one.apply(run)
        finally:
            run.host.loop_position.pop()
