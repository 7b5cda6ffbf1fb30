"""The nats role's health checks: its unit, /healthz, JetStream, and what a
client without (or with) the password or TLS is told."""

from __future__ import annotations

from armada.health import Check, concurrently, http_json, http_json_until, nats_connect, nats_healthy, shown, unit_active
from armada.role_support import local_address


def checks(run) -> list[Check]:
    """``run``: the host's armada.role.RoleRun."""
    return nats_checks(run.host, run.data)


def nats_checks(host, data: dict) -> list[Check]:
    """The unit and /healthz (waited for), then JetStream and what clients are told, at once."""
    monitor = f"http://127.0.0.1:{data['nats_monitor_port']}"
    active, (ok, health) = concurrently(lambda: unit_active(host, "armada-nats"),
                                        lambda: http_json_until(host, f"{monitor}/healthz", nats_healthy, retries=30))
    checks = [active, Check(host.name, "nats /healthz", ok, shown(health))]

    def jetstream() -> Check:
        ok, jsz = http_json(host, f"{monitor}/jsz")
        enabled = ok and isinstance(jsz, dict) and not jsz.get("disabled") and "config" in jsz
        seen = f"store_dir={jsz['config'].get('store_dir')}" if enabled else str(jsz)[:200]
        return Check(host.name, "nats JetStream enabled", enabled, seen)

    calls = [jetstream]
    address = local_address(data["nats_listen"])
    if data["nats_tls_cert_file"]:
        # a plaintext client is told to speak TLS and let go; the password is
        # then checked over TLS by the hosts using this nats (control_plane_checks)
        def tls_required() -> Check:
            reply = nats_connect(host, address, data["nats_port"])
            return Check(host.name, "nats requires TLS of every client",
                         " | tls_required" in reply and not reply.endswith("PONG"), reply[-160:])
        calls.append(tls_required)
    elif data["nats_password_file"]:
        def refused() -> Check:
            reply = nats_connect(host, address, data["nats_port"])
            return Check(host.name, "nats refuses a client without the password",
                         "Authorization Violation" in reply, reply[-120:])

        def accepted() -> Check:
            reply = nats_connect(host, address, data["nats_port"], data["nats_user"], data["nats_password_file"])
            return Check(host.name, f"nats accepts {data['nats_user']} with its password",
                         reply.endswith("PONG"), reply[-120:])
        calls += [refused, accepted]
    return checks + concurrently(*calls)
