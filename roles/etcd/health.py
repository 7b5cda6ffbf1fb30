"""The etcd role's health checks: its unit, endpoint health (over TLS when it
speaks TLS, and no health over plain http then), auth refusing anonymous
requests, letting root in, and its clients' user in on Dynamo's keys only."""

from __future__ import annotations

import base64

from armada.health import Check, etcd_healthy, etcd_read, http_json_until, shown, unit_active
from armada.role_support import local_etcd, run_quiet
from roles.etcd.defaults import CLIENT_PREFIX


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun."""
    return etcd_checks(run.host, run.data)


def etcd_checks(host, data: dict) -> list[Check]:
    checks = [unit_active(host, "armada-etcd")]
    url, ca = local_etcd(data)
    ok, health = http_json_until(host, f"{url}/health", etcd_healthy, retries=30, cacert=ca)
    checks.append(Check(host.name, "etcd endpoint health", ok, shown(health)))
    if ca:
        _, seen = run_quiet(host, f"curl -sS --max-time 10 --noproxy '*' http://127.0.0.1:{data['etcd_client_port']}/health")
        checks.append(Check(host.name, "etcd answers plain http with no health", '"health"' not in seen, seen[-120:]))
    if data["etcd_password_file"]:
        ok, seen = etcd_read(host, url, ca_file=ca)
        checks.append(Check(host.name, "etcd refuses a request without credentials", "user name is empty" in seen,
                            seen[-120:]))
        ok, seen = etcd_read(host, url, data["etcd_password_file"], ca_file=ca)
        checks.append(Check(host.name, "etcd root authenticates and reads", ok, seen[-120:]))
    if data["etcd_password_file"] and data["etcd_client_password_file"]:
        user, password = data["etcd_client_user"], data["etcd_client_password_file"]
        ok, seen = etcd_read(host, url, password, {"key": base64.b64encode(CLIENT_PREFIX.encode()).decode()},
                             ca_file=ca, user=user)
        checks.append(Check(host.name, f"etcd {user} reads {CLIENT_PREFIX}", ok, seen[-120:]))
        _, seen = etcd_read(host, url, password, ca_file=ca, user=user)
        checks.append(Check(host.name, f"etcd {user} is refused outside {CLIENT_PREFIX}", "permission denied" in seen,
                            seen[-120:]))
    return checks
