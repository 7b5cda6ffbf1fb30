"""etcd auth fails closed (issue 16): armada's auth scripts against a real
etcd (Debian's etcd-server, started here on a free port; .ci/run installs
it). Auth ends enabled with root logging in, or the script stops with the
reason; the clients' user reads and writes Dynamo's keys (v1/) and nothing
else."""

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from armada.commands.etcd import etcd_client_user_script, etcd_enable_auth_script

ROOT_PASSWORD = "9f1c2e7a5b3d4c6e8f0a1b2c3d4e5f60"
CLIENT_PASSWORD = "c0ffee00aa11bb22cc33dd44ee55ff66"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def etcd(tmp_path):
    binary = shutil.which("etcd") or "/usr/bin/etcd"
    assert os.path.exists(binary), "etcd is not installed (apt-get install etcd-server; .ci/run does)"
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    server = subprocess.Popen(
        [binary, "--data-dir", str(tmp_path / "data"), "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
         f"http://127.0.0.1:{peer}", "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "ETCD_UNSUPPORTED_ARCH": "arm64"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "etcd did not start"
                time.sleep(0.2)
        for name, value in (("root", ROOT_PASSWORD), ("client", CLIENT_PASSWORD), ("wrong", "not-the-password")):
            (tmp_path / name).write_text(value + "\n")
        yield url, tmp_path
    finally:
        server.terminate()
        server.wait(10)


def bash(script):
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)


def call(url, path, body, token=None):
    headers = {"Authorization": token} if token else {}
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers=headers)
    try:
        return json.load(urllib.request.urlopen(request, timeout=10))
    except urllib.error.HTTPError as error:
        return json.load(error)


def token(url, name, password):
    return call(url, "/v3/auth/authenticate", {"name": name, "password": password}).get("token")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_auth_ends_enabled_with_root_in_and_anonymous_out(etcd):
    url, folder = etcd
    result = bash(etcd_enable_auth_script(url, str(folder / "root")))
    assert result.returncode == 0 and "etcd auth enabled" in result.stdout, result.stderr
    assert "user name is empty" in call(url, "/v3/kv/range", {"key": b64("a")})["error"]
    assert token(url, "root", ROOT_PASSWORD)
    # a second run changes nothing and says so
    again = bash(etcd_enable_auth_script(url, str(folder / "root")))
    assert again.returncode == 0 and "already enabled" in again.stdout
    assert ROOT_PASSWORD not in result.stdout + result.stderr


def test_the_client_user_reads_and_writes_dynamos_prefix_only(etcd):
    url, folder = etcd
    assert bash(etcd_enable_auth_script(url, str(folder / "root"))).returncode == 0
    script = etcd_client_user_script(url, str(folder / "root"), "armada-client", str(folder / "client"), "v1/")
    for _ in range(2):  # idempotent: the second run keeps the role, grant and user
        result = bash(script)
        assert result.returncode == 0 and "readwrite on v1/ only" in result.stdout, result.stderr
    client = token(url, "armada-client", CLIENT_PASSWORD)
    assert "header" in call(url, "/v3/kv/put", {"key": b64("v1/instances/dynamo/x"), "value": b64("1")}, client)
    assert call(url, "/v3/kv/range", {"key": b64("v1/instances/dynamo/x")}, client)["kvs"][0]["value"] == b64("1")
    for key in ("a", "v2/x", "v1"):
        assert "permission denied" in call(url, "/v3/kv/put", {"key": b64(key), "value": b64("1")}, client)["error"]
        assert "permission denied" in call(url, "/v3/kv/range", {"key": b64(key)}, client)["error"]
    # the client cannot change auth
    assert "permission denied" in call(url, "/v3/auth/user/add", {"name": "x", "password": "y"}, client)["error"]


def test_a_wrong_root_password_stops_with_the_reason(etcd):
    url, folder = etcd
    assert bash(etcd_enable_auth_script(url, str(folder / "root"))).returncode == 0
    result = bash(etcd_client_user_script(url, str(folder / "wrong"), "armada-client", str(folder / "client"), "v1/"))
    assert result.returncode == 1 and f"etcd refused root with the password in {folder / 'wrong'}" in result.stderr


def test_an_etcd_that_does_not_answer_stops_the_run(tmp_path):
    (tmp_path / "root").write_text(ROOT_PASSWORD + "\n")
    url = f"http://127.0.0.1:{free_port()}"
    for script in (etcd_enable_auth_script(url, str(tmp_path / "root"), wait_s=2),
                   etcd_client_user_script(url, str(tmp_path / "root"), "c", str(tmp_path / "root"), "v1/", wait_s=2)):
        result = bash(script)
        assert result.returncode == 1 and f"etcd at {url} did not answer /health within 2 s" in result.stderr


def test_health_reads_after_one_login_each_answered_in_turn(etcd):
    """armada.health.etcd_reads against a real etcd, on this machine through pyinfra's @local connector."""
    from pyinfra.api import Config, State
    from pyinfra.api.connect import connect_all

    from armada.health import etcd_read, etcd_reads
    from armada.inventory import load_inventory

    url, folder = etcd
    assert bash(etcd_enable_auth_script(url, str(folder / "root"))).returncode == 0
    assert bash(etcd_client_user_script(url, str(folder / "root"), "armada-client", str(folder / "client"),
                                        "v1/")).returncode == 0
    inventory = load_inventory("@local")
    connect_all(State(inventory, Config()))
    local = inventory.get_host("@local")
    (inside_ok, inside), (outside_ok, outside) = etcd_reads(
        local, url, str(folder / "client"), [{"key": b64("v1/")}, {"key": b64("a")}], user="armada-client")
    assert inside_ok and '"header"' in inside
    assert not outside_ok and "permission denied" in outside
    refused = etcd_reads(local, url, str(folder / "wrong"), [{"key": b64("v1/")}, {"key": b64("a")}],
                         user="armada-client")
    assert refused == [(False, "authentication refused")] * 2
    ok, seen = etcd_read(local, url)
    assert not ok and "user name is empty" in seen
    assert etcd_read(local, url, str(folder / "root"))[0]


@pytest.fixture
def etcd_asking_for_certificates(tmp_path):
    """A real etcd speaking TLS only and asking every client for a certificate the CA signed
    (etcd_client_cert_auth), with the lab's way of making certificates: the server's (127.0.0.1, TLS
    server and client auth: etcd's gateway connects to etcd with it), armada's CN-less client certificate,
    and Dynamo's with CN=armada-client."""
    from armada.lab.tls import make_tls

    folder = str(tmp_path / "tls")
    server = make_tls(folder, "server", ["127.0.0.1"], ["localhost"])
    armada = make_tls(folder, "armada", [], [], subject="/O=armada")
    dynamo = make_tls(folder, "dynamo", [], [], subject="/CN=armada-client")
    binary = shutil.which("etcd") or "/usr/bin/etcd"
    client, peer = free_port(), free_port()
    url = f"https://127.0.0.1:{client}"
    process = subprocess.Popen(
        [binary, "--data-dir", str(tmp_path / "data"), "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
         f"http://127.0.0.1:{peer}", "--initial-cluster", f"default=http://127.0.0.1:{peer}",
         "--cert-file", server["cert"], "--key-file", server["key"], "--client-cert-auth",
         "--trusted-ca-file", server["ca"]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "ETCD_UNSUPPORTED_ARCH": "arm64"})
    curl = f"curl -sS --max-time 5 --cacert {server['ca']} --cert {armada['cert']} --key {armada['key']}"
    try:
        deadline = time.monotonic() + 30
        while '"health":"true"' not in bash(f"{curl} {url}/health").stdout:
            assert process.poll() is None and time.monotonic() < deadline, "etcd did not start"
            time.sleep(0.3)
        for name, value in (("root", ROOT_PASSWORD), ("client", CLIENT_PASSWORD)):
            (tmp_path / name).write_text(value + "\n")
        yield url, tmp_path, server["ca"], armada, dynamo
    finally:
        process.terminate()
        process.wait(10)


def test_armada_sets_up_and_reads_an_etcd_asking_for_client_certificates(etcd_asking_for_certificates):
    """The auth setup, the client user and the health reads, through etcd's JSON gateway with armada's
    CN-less certificate; a client with no certificate cannot connect at all, and one whose certificate
    carries a CommonName is refused by the gateway while auth is on, whatever token it sends (why armada's
    own certificate has none, and Dynamo's, whose CN is its etcd user, is for Dynamo's gRPC only)."""
    from pyinfra.api import Config, State
    from pyinfra.api.connect import connect_all

    from armada.commands.etcd import TlsFiles
    from armada.health import etcd_reads
    from armada.inventory import load_inventory

    url, folder, ca, armada, dynamo = etcd_asking_for_certificates
    tls = TlsFiles(ca, armada["cert"], armada["key"])
    for script in (etcd_enable_auth_script(url, str(folder / "root"), tls=tls),
                   etcd_client_user_script(url, str(folder / "root"), "armada-client", str(folder / "client"), "v1/",
                                           tls=tls)):
        result = bash(script)
        assert result.returncode == 0, result.stderr
    inventory = load_inventory("@local")
    connect_all(State(inventory, Config()))
    local = inventory.get_host("@local")
    (inside_ok, inside), (outside_ok, outside) = etcd_reads(
        local, url, str(folder / "client"), [{"key": b64("v1/")}, {"key": b64("a")}], tls=tls, user="armada-client")
    assert inside_ok and not outside_ok and "permission denied" in outside, (inside, outside)
    # no certificate: the TLS handshake fails
    bare = bash(f"curl -sS --max-time 5 --cacert {ca} {url}/health")
    assert bare.returncode != 0 and '"health"' not in bare.stdout
    # a certificate with a CommonName, through the gateway, with root's token: refused
    root = bash(f"printf '{{\"name\":\"root\",\"password\":\"%s\"}}' \"$(cat {folder / 'root'})\" | curl -sS "
                f"--cacert {ca} --cert {armada['cert']} --key {armada['key']} -d @- {url}/v3/auth/authenticate")
    token_ = json.loads(root.stdout)["token"]
    named = bash(f"curl -sS --cacert {ca} --cert {dynamo['cert']} --key {dynamo['key']} -H 'Authorization: {token_}' "
                 f"-d '{{\"key\":\"YQ==\"}}' {url}/v3/kv/range")
    assert "CommonName of client sending a request against gateway will be ignored" in named.stdout, named.stdout
    # /health is no /v3 call: Dynamo's certificate passes there (the units' wait for etcd presents it)
    assert '"health":"true"' in bash(f"curl -sS --cacert {ca} --cert {dynamo['cert']} --key {dynamo['key']} "
                                     f"{url}/health").stdout
