"""nats and etcd speaking TLS on the lab (``ARMADA_LAB_TLS=1``): armada-cp's
nats requires TLS of every client and etcd serves https only, with the
certificate `armada lab up` made (armada/lab/tls.py); armada-serve reaches
both over TLS, checking the certificate against the lab's CA, and
authenticates with its passwords. At the end both go back to plain TCP, as
the other lab tests expect.
"""

import json
import os
import socket
import ssl
import subprocess
import sys

import pytest

from armada.lab import hosts as lab
from armada.lab import tls
from conftest import ROOT

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

CP = lab.HOSTS_BY_NAME["armada-cp"]
SERVE = lab.HOSTS_BY_NAME["armada-serve"]
PYINFRA = os.path.join(os.path.dirname(sys.executable), "pyinfra")


def deploy(report, with_tls: bool):
    env = {**os.environ, "ARMADA_LAB_TLS": "1" if with_tls else "0"}
    result = subprocess.run(
        [PYINFRA, "-y", "inventories/local.py", "deploys/llm.py", "--limit", CP.name, "--limit", SERVE.name,
         "--data", f"armada_health_report={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=2400, env=env,
    )
    return result, result.stdout + result.stderr


@pytest.fixture(scope="module")
def tls_run(deployed_lab, tmp_path_factory):
    """The deployed lab (conftest.deployed_lab) switched to TLS, and back to plain TCP at the end."""
    for host in (CP, SERVE):
        lab.refresh_lab_files(host)
    folder = tmp_path_factory.mktemp("tls")
    try:
        result, output = deploy(folder / "tls.json", with_tls=True)
        report = json.loads((folder / "tls.json").read_text()) if (folder / "tls.json").exists() else {}
        failed = {name: [c for c in entry["checks"] if not c["ok"]] for name, entry in report.items()}
        assert result.returncode == 0, (failed, output[-8000:])
        yield report
    finally:
        result, output = deploy(folder / "back.json", with_tls=False)
        assert result.returncode == 0, output[-8000:]


def test_every_check_is_green_over_tls(tls_run):
    cp = {c["check"]: c for c in tls_run[CP.name]["checks"]}
    for name in ("nats requires TLS of every client", "etcd endpoint health", "etcd answers plain http with no health",
                 "etcd refuses a request without credentials", "etcd root authenticates and reads"):
        assert cp[name]["ok"], cp
    serve = {c["check"]: c for c in tls_run[SERVE.name]["checks"]}
    etcd, nats = f"https://{CP.address}:2379", f"tls://{CP.address}:4222"
    for name in (f"reaches etcd {etcd}", f"authenticates to etcd {etcd} as armada-client",
                 f"nats over TLS refuses a client without the password {nats}",
                 f"authenticates to nats over TLS {nats}"):
        assert serve[name]["ok"], serve


def connect_with_the_password() -> bytes:
    """A nats client's CONNECT as user armada with the lab's password, and a PING."""
    credentials = {"verbose": False, "user": "armada", "pass": lab.lab_secret("nats-password")}
    return b"CONNECT " + json.dumps(credentials).encode() + b"\r\nPING\r\n"


def read_line(conn) -> bytes:
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = conn.recv(4096)
        assert chunk, line
        line += chunk
    return line


def before_tls(raw, port):
    """nats (4222) first sends its INFO in plaintext, asking for TLS; the client then starts it. etcd: TLS at once."""
    if port == 4222:
        info = read_line(raw)
        assert info.startswith(b"INFO ") and json.loads(info[5:]).get("tls_required") is True, info


def test_from_outside_only_the_labs_ca_is_trusted(tls_run):
    paths = tls.lab_tls()
    for port in (2379, 4222):
        with socket.create_connection((CP.address, port), timeout=10) as raw:
            before_tls(raw, port)
            context = ssl.create_default_context(cafile=paths["ca"])
            with context.wrap_socket(raw, server_hostname=CP.address) as conn:
                assert conn.version().startswith("TLS")
                if port == 4222:  # nats itself at the other end: armada with its password gets in, over TLS
                    conn.sendall(connect_with_the_password())
                    assert read_line(conn) == b"PONG\r\n"
        with pytest.raises(ssl.SSLCertVerificationError):
            with socket.create_connection((CP.address, port), timeout=10) as raw:
                before_tls(raw, port)
                ssl.create_default_context().wrap_socket(raw, server_hostname=CP.address)


def test_nats_refuses_a_plaintext_client_even_with_the_password(tls_run):
    """What nats.conf's tls block promises: every client speaks TLS; one that
    goes on in plaintext after the INFO is let go without an answer."""
    reply = b""
    with socket.create_connection((CP.address, 4222), timeout=10) as conn:
        before_tls(conn, 4222)
        conn.sendall(connect_with_the_password())
        conn.settimeout(5)
        try:
            while chunk := conn.recv(4096):
                reply += chunk
        except OSError:  # reset, or no answer within 5 s
            pass
    assert b"PONG" not in reply and b"+OK" not in reply, reply


def test_each_key_is_its_service_users_alone(tls_run):
    status, out, _ = lab.ssh_exec(CP, f"stat -c '%a %U' {tls.NATS_KEY_FILE} {tls.ETCD_KEY_FILE} {tls.CERT_FILE}")
    assert status == 0 and out.split("\n")[:3] == ["600 armada-nats", "600 armada-etcd", "644 root"], out
    status, out, _ = lab.ssh_exec(CP, "grep -c 'BEGIN' /etc/armada/nats.conf /etc/armada/etcd.env; true")
    assert "nats.conf:0" in out and "etcd.env:0" in out, out  # paths there, never the key itself
