"""What every deploy does first: check all data, then read facts and decide.

Deploy files call :func:`prepare` at their top. pyinfra runs a deploy file
once per host while it *plans* (nothing runs on hosts yet), so raising here
stops the whole run before any operation changes any host.
"""

from __future__ import annotations

from pyinfra import logger
from pyinfra.api.exceptions import PyinfraError

from armada.facts.disk import FreeSpace
from armada.facts.host import HostSnapshot
from armada.facts.secrets import PemFile, SecretFile
from armada.facts.urls import UrlStatus
from armada.inventory import host_data, model_bytes, validate_inventory
from armada.parsers.disk import disk_problem
from armada.profile import Profile, build_profile
from armada.schema import DataError


class ArmadaDataError(PyinfraError):
    """Bad inventory data: the run stops before any host is changed."""


_checked: set[int] = set()


def stop_on(errors: list, what: str) -> None:
    """Raise one ArmadaDataError listing every error (nothing has changed yet)."""
    if errors:
        lines = "\n".join(f"  - {e}" for e in errors)
        raise ArmadaDataError(f"{len(errors)} {what}; nothing was changed on any host:\n{lines}")


def check_inventory(inventory) -> None:
    """Validate every host's data once per run; raise with every error found."""
    if id(inventory) in _checked:
        return
    errors = validate_inventory(inventory)
    if not errors:
        import os

        from armada.schema import with_defaults

        # a fresh report for this run, naming every host of the run until its
        # health checks replace its entry: a host that never connected, or
        # whose run stopped midway, stays in the report as failed
        from armada.health import Check, write_report

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
            write_report(report, host.name, [Check(host.name, "run reached the health checks", False, seen)])
    stop_on(errors, "data error(s)")
    _checked.add(id(inventory))


def host_profile(host) -> Profile:
    """This host's profile from its facts and data (read-only on the host)."""
    facts = host.get_fact(HostSnapshot)
    data = host_data(host)
    try:
        profile = build_profile(host.name, facts, data, model_bytes(data))
    except DataError as exc:
        raise ArmadaDataError(f"{exc}; nothing was changed on this host") from None
    return profile


def urls_to_check(data: dict, profile: Profile) -> list[tuple[str, str]]:
    """``(key, url)`` of every URL this host's roles will fetch from (a pure decision)."""
    roles = data["armada_roles"]
    urls = []
    if "vllm" in roles:
        if profile.torch_index_url:  # the index must serve torch, not only answer
            urls.append(("torch_index_url", profile.torch_index_url.rstrip("/") + "/torch/"))
        if data["vllm_wheelhouse"] and "://" in data["vllm_wheelhouse"]:
            urls.append(("vllm_wheelhouse", data["vllm_wheelhouse"]))
    if "nvidia" in roles and profile.accelerator == "cuda" and data["nvidia_repo_mirror"]:
        urls.append(("nvidia_repo_mirror", data["nvidia_repo_mirror"]))
    if "nats" in roles and data["nats_source"] == "release" and data["nats_release_url"]:
        urls.append(("nats_release_url", data["nats_release_url"]))
    return urls


def _proxy_for(url: str, data: dict) -> str | None:
    from urllib.parse import urlparse

    bypass = {name.strip() for name in data["armada_no_proxy"].split(",") if name.strip()}
    return None if urlparse(url).hostname in bypass else data["armada_proxy"]


def check_urls(host, data: dict, profile: Profile) -> None:
    """Every URL the run needs must answer from the host itself (through its
    proxy), before anything changes: a mirror that is down or mistyped
    stops the run here, naming host, key and value."""
    errors = []
    for key, url in urls_to_check(data, profile):
        problem = host.get_fact(UrlStatus, url=url, proxy=_proxy_for(url, data))
        if problem and problem.startswith("untrusted certificate") and data["armada_ca_certs"]:
            continue  # a server answered; the base role installs armada_ca_certs before any download
        if problem:
            errors.append(DataError(host.name, key, url, problem))
    stop_on(errors, "unreachable URL(s)")


def check_disks(host, data: dict) -> None:
    """The model cache must be writable and have room for a model not there yet."""
    from pyinfra.facts.files import Directory

    if "model" not in data["armada_roles"]:
        return
    from roles.model import model_dir

    target = model_dir(data)
    needed = None if host.get_fact(Directory, path=target) else model_bytes(data)
    problem = disk_problem(host.get_fact(FreeSpace, path=target), target, needed)
    if problem:
        stop_on([DataError(host.name, "model_cache_dir", data["model_cache_dir"], problem)], "model cache problem(s)")


def check_secrets(host, data: dict) -> None:
    """Every secret file the host's data names exists on the host and holds one
    usable secret; every TLS file holds a PEM block of its kind."""
    from armada.schema import SECRET_FILE_KEYS, TLS_FILE_KEYS

    errors = []
    for key in SECRET_FILE_KEYS:
        if data[key]:
            problem = host.get_fact(SecretFile, path=data[key], service_user=data["armada_user"])
            if problem:
                errors.append(DataError(host.name, key, data[key], problem))
    for key, kind in TLS_FILE_KEYS.items():
        if data[key]:
            problem = host.get_fact(PemFile, path=data[key], kind=kind, service_user=data["armada_user"])
            if problem:
                errors.append(DataError(host.name, key, data[key], problem))
    stop_on(errors, "unusable secret file(s)")


def prepare(host, inventory) -> Profile:
    check_inventory(inventory)
    profile = host_profile(host)
    from armada.role_support import role_data

    data = role_data(host)
    if data["armada_check_urls"]:
        check_urls(host, data, profile)
    check_disks(host, data)
    check_secrets(host, data)
    for name, reason in profile.reasons.items():
        logger.info(f"{host.print_prefix}{name} = {getattr(profile, name, None)!r}: {reason}")
    return profile


def run_health_checks(host, inventory, profile: Profile) -> None:
    """Health of one host after the run (called through python.call)."""
    from armada import health
    from armada.role_support import control_plane_host, etcd_url, nats_url, role_data

    data = role_data(host)
    roles = data["armada_roles"]
    checks: list = []
    if "nats" in roles:
        checks += health.nats_checks(host, data)
    if "etcd" in roles:
        checks += health.etcd_checks(host, data)
    control_plane = control_plane_host(host, inventory)
    cp_etcd = etcd_url(control_plane)
    if "vllm_service" in roles:
        from roles.model import model_name
        from roles.vllm import current_link

        if control_plane is not host:
            checks += health.control_plane_checks(host, nats_url(control_plane), cp_etcd, data,
                                                  python=f"{current_link(data)}/bin/python")

        # what really serves: the install `current` points at
        if data["armada_serving"] == "dynamo":
            from roles.dynamo import plan_workers

            checks += health.dynamo_checks(host, data, profile, current_link(data), model_name(data),
                                           plan_workers(host.name, profile, data), cp_etcd, data["vllm_ready_timeout"])
        else:
            checks += health.vllm_checks(host, data, profile, current_link(data), model_name(data),
                                         data["vllm_ready_timeout"])
    if profile.accelerator == "cuda" and "nvidia" in roles:
        checks += health.gpu_checks(host, profile, data)
    health.write_report(data["armada_health_report"], host.name, checks)
    print(f"\n--> Health of {host.name}\n{health.render_table(checks)}\n", flush=True)
    failed = [c for c in checks if not c.ok]
    if failed:
        raise RuntimeError(f"{host.name}: {len(failed)} health check(s) failed: "
                           + "; ".join(f"{c.check} (seen: {c.seen[-160:]})" for c in failed))


def schedule_health_checks(host, inventory, profile: Profile) -> None:
    from pyinfra.operations import python

    python.call(name="armada health checks (read-only)", function=run_health_checks, host=host,
                inventory=inventory, profile=profile)


def apply_roles(host, inventory, profile: Profile, skip: tuple[str, ...] = ()) -> None:
    """Run this host's roles (``armada_roles``) in the one fixed order, less ``skip``."""
    import importlib

    from armada.role_support import role_data

    for module in role_modules(role_data(host), skip):
        # pyinfra names an operation by the line numbers of its call stack below
        # the deploy file, not by file: every role is called from the line
        # above, so roles' operations on equal lines shared an identity. A host
        # that skipped one (an install already done) then moved the next onto
        # it, and hosts in different states made the run's order circular
        # ("Cycle detected in operation ordering DAG"). The role's fixed place
        # joins the identity (pyinfra appends host.loop_position to it).
        host.loop_position.append(role_identity(module))
        try:
            importlib.import_module(module).apply(profile)
        finally:
            host.loop_position.pop()


def role_identity(module: str) -> int:
    """A role module's place among all of them (pure, the same on every host)."""
    from roles.base.defaults import ALL_ROLES

    return [f"roles.{role}" for role in ALL_ROLES + ("dynamo",)].index(module)


def role_modules(data: dict, skip: tuple[str, ...] = ()) -> list[str]:
    """The role packages a host runs, in the one fixed order (pure): its
    ``armada_roles`` less ``skip``; serving (vllm_service) is Dynamo's frontend
    and workers when ``armada_serving`` is 'dynamo'."""
    from roles.base.defaults import ALL_ROLES

    modules = []
    for role in ALL_ROLES:
        if role in data["armada_roles"] and role not in skip:
            serving_role = "dynamo" if role == "vllm_service" and data["armada_serving"] == "dynamo" else role
            modules.append(f"roles.{serving_role}")
    return modules
