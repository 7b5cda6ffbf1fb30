"""The etcd role's health checks: its unit, endpoint health (over TLS when it
speaks TLS, and no health over plain http then), auth refusing anonymous
requests, letting root in, and its clients' user in on Dynamo's keys only."""

from __future__ import annotations

import base64

from armada.commands.etcd import TlsFiles
from armada.health import Check, concurrently, etcd_healthy, etcd_read, etcd_reads, http_json_until, shown, unit_active
from armada.role_support import local_etcd, run_quiet
from roles.etcd.defaults import CLIENT_PREFIX


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun."""
    return etcd_checks(run.host, run.data)


def etcd_checks(host, data: dict) -> list[Check]:
    """The unit and endpoint health (waited for), then the auth checks at once."""
    url, tls = local_etcd(data)
    active, (ok, health) = concurrently(
        lambda: unit_active(host, "armada-etcd"),
        lambda: http_json_until(host, f"{url}/health", etcd_healthy, retries=30, tls=tls))
    checks = [active, Check(host.name, "etcd endpoint health", ok, shown(health))]
    calls = []
    if tls:
        def plain() -> list[Check]:
            _, seen = run_quiet(host, f"curl -sS --max-time 10 --noproxy '*' "
                                      f"http://127.0.0.1:{data['etcd_client_port']}/health")
            return [Check(host.name, "etcd answers plain http with no health", '"health"' not in seen, seen[-120:])]
        calls.append(plain)
    if tls and data["etcd_client_cert_auth"]:
        def certless() -> list[Check]:
            ok, seen = run_quiet(host, f"curl -sS --max-time 10 --noproxy '*'{TlsFiles(tls.ca).curl_args()} "
                                       f"{url}/health")
            return [Check(host.name, "etcd refuses a client without a certificate", not ok and '"health"' not in seen,
                          seen[-120:])]
        calls.append(certless)
    if data["etcd_password_file"]:
        def anonymous() -> list[Check]:
            _, seen = etcd_read(host, url, tls=tls)
            return [Check(host.name, "etcd refuses a request without credentials", "user name is empty" in seen,
                          seen[-120:])]

        def root() -> list[Check]:
            ok, seen = etcd_read(host, url, data["etcd_password_file"], tls=tls)
            return [Check(host.name, "etcd root authenticates and reads", ok, seen[-120:])]
        calls += [anonymous, root]
    if data["etcd_password_file"] and data["etcd_client_password_file"]:
        user, password = data["etcd_client_user"], data["etcd_client_password_file"]

        def client_reads() -> list[Check]:  # one login, two reads
            (ok, seen), (_, refused) = etcd_reads(
                host, url, password, [{"key": base64.b64encode(CLIENT_PREFIX.encode()).decode()}, {"key": "YQ=="}],
                tls=tls, user=user)
            return [Check(host.name, f"etcd {user} reads {CLIENT_PREFIX}", ok, seen[-120:]),
                    Check(host.name, f"etcd {user} is refused outside {CLIENT_PREFIX}", "permission denied" in refused,
                          refused[-120:])]
        calls.append(client_reads)
    return checks + [check for found in concurrently(*calls) for check in found]
