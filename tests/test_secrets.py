"""Secrets: files ON THE HOST, checked before the run, never in configs or
command lines. The real shell probe runs here on real files; etcd's answers
are real captures (tests/fixtures/etcd-auth); nats and etcd logging in with
them is shown on the lab (tests/test_lab_deploy.py)."""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import textwrap
import time

import jinja2
import pytest
from conftest import fixture_text

from armada.commands.etcd import etcd_enable_auth_script, etcd_login_body
from armada.commands.secrets import secret_file_command
from armada.hardening import unit_hardening
from armada.inventory import load_inventory, validate_inventory
from armada.parsers.secrets import etcd_auth_state, secret_file_problem
from armada.schema import all_keys, secret_file_keys

SECRET = "3f9c1a0b7e4d2c8a9b6f0e1d2c3b4a59"
NOBODY = "armada-test-nobody"  # a service user that owns none of the folders


@pytest.fixture
def open_dir():
    """A folder every user may pass (pytest's own tmp folders are 0700)."""
    folder = tempfile.mkdtemp(prefix="armada-secret-")
    os.chmod(folder, 0o755)
    yield pathlib.Path(folder)
    shutil.rmtree(folder)


def probe(path) -> str | None:
    result = subprocess.run(["sh", "-c", secret_file_command(str(path), NOBODY)], capture_output=True, text=True)
    assert SECRET not in result.stdout + result.stderr  # the probe says what the file is like, never what it holds
    return secret_file_problem(result.stdout)


@pytest.mark.parametrize(
    "content,problem",
    [
        (SECRET + "\n", None),
        (SECRET, None),
        ("", "empty"),
        (SECRET + "\n" + SECRET + "\n", "more than one line"),
        ('pa"ss word\n', "characters other than"),
    ],
)
def test_secret_file_probe_on_real_files(open_dir, content, problem):
    path = open_dir / "secret"
    path.write_text(content)
    path.chmod(0o600)
    found = probe(path)
    assert (found is None) if problem is None else (problem in found), found


def test_secret_file_probe_names_a_folder_the_service_user_cannot_pass(open_dir):
    closed = open_dir / "closed"
    closed.mkdir()
    (closed / "secret").write_text(SECRET)
    closed.chmod(0o700)
    found = probe(closed / "secret")
    assert f"the folder {closed} (mode 700)" in found and "o+x" in found, found
    closed.chmod(0o711)
    assert probe(closed / "secret") is None


def test_secret_file_probe_missing_and_folder(tmp_path):
    assert "no such file" in probe(tmp_path / "absent")
    assert "not a regular file" in probe(tmp_path)


def test_every_secret_key_is_a_host_path_with_plain_characters():
    keys = all_keys()
    for name in secret_file_keys():
        key = keys[name]
        assert key.default is None and "ON THE HOST" in key.doc
        assert key.validate("h", "/etc/armada-secrets/x") is None
        assert "letters, digits" in str(key.validate("h", "/etc/my secret"))
        assert "absolute" in str(key.validate("h", "secrets/x"))


def test_a_client_of_a_password_protected_control_plane_needs_the_password(tmp_path):
    path = tmp_path / "inv.py"
    path.write_text(textwrap.dedent("""
        cp = (["cp"], {"armada_roles": ["base", "nats", "etcd"], "nats_password_file": "/s/nats",
                       "etcd_password_file": "/s/etcd", "nats_listen": "0.0.0.0", "etcd_listen": "0.0.0.0"})
        serving = (["s1"], {"armada_control_plane": "cp", "model_id": "org/m", "nats_password_file": "/s/nats"})
    """))
    errors = validate_inventory(load_inventory(str(path)))
    # the client logs in as etcd_client_user, never root: its password on both hosts
    assert [(e.host, e.key, e.value) for e in errors] == [("s1", "etcd_client_password_file", None)], \
        [str(e) for e in errors]
    assert "cp's etcd requires a password" in str(errors[0])
    fixed = tmp_path / "fixed.py"
    fixed.write_text(path.read_text().replace('"nats_password_file": "/s/nats"})',
                                              '"nats_password_file": "/s/nats", "etcd_client_password_file": "/s/c"})'))
    errors = validate_inventory(load_inventory(str(fixed)))
    assert [(e.host, e.key, e.value) for e in errors] == [("cp", "etcd_client_password_file", None)], \
        [str(e) for e in errors]
    assert "s1 uses this host's etcd" in str(errors[0])


def test_etcd_auth_state_from_real_answers():
    assert etcd_auth_state(fixture_text("etcd-auth", "range-auth-disabled.txt")) == "disabled"
    assert etcd_auth_state(fixture_text("etcd-auth", "range-auth-enabled.txt")) == "enabled"
    assert etcd_auth_state(fixture_text("etcd-auth", "range-down.txt")) == "unreachable"


def test_etcd_auth_script_reads_the_password_on_the_host_and_sends_it_on_stdin():
    script = etcd_enable_auth_script("http://127.0.0.1:2379", "/etc/armada-secrets/etcd-password")
    add = next(line for line in script.splitlines() if "/v3/auth/user/add" in line)
    assert add.startswith("out=$(printf ") and "$(cat /etc/armada-secrets/etcd-password)" in add and "-d @-" in add  # builtin printf into curl's stdin: no argv holds it
    assert "already enabled" in script and script.rstrip().endswith('echo "etcd auth enabled"')
    # bash accepts it
    subprocess.run(["bash", "-n", "-c", script], check=True)


def test_etcd_login_body_is_the_json_etcd_takes(open_dir):
    """The shell fragment both the auth script and the health checks pipe into
    curl, run by bash on a real file: exactly etcd's login request."""
    path = open_dir / "etcd-password"
    path.write_text(SECRET + "\n")
    out = subprocess.run(["bash", "-c", etcd_login_body(str(path))], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == {"name": "root", "password": SECRET}
    assert SECRET not in etcd_login_body(str(path))


def render(template, **values):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader("."), undefined=jinja2.StrictUndefined)
    return env.get_template(template).render(**values)


# a lab password that nats-server 2.9 once refused to start with: it parses an
# environment variable's value as config text, and 32e76... reads as a number
NUMBER_LIKE = "32e76fb7c528e1a863aa68276c67bf81d255f3fefe0a6ae2"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nats_reply(port: int, user: str | None = None, password: str | None = None) -> str:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.recv(4096)  # INFO
        credentials = {"user": user, "pass": password} if user else {}
        conn.sendall(b"CONNECT " + json.dumps({"verbose": False, **credentials}).encode() + b"\r\nPING\r\n")
        return conn.recv(200).decode()


@pytest.mark.parametrize("password", [NUMBER_LIKE, SECRET, "0123456789", "1e5", "x.y:z@w+v/u=t~s-r_q"])
def test_nats_starts_with_any_password_the_file_may_hold(tmp_path, password):
    """The role's real config and launcher, a real nats-server (Debian's), the
    password in a file: nats starts, lets in the user with it, refuses others."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    assert os.path.exists(binary), "nats-server is not installed (apt-get install nats-server; .ci/run does)"
    port = free_port()
    (tmp_path / "pw").write_text(password + "\n")
    config = tmp_path / "nats.conf"
    config.write_text(render("roles/nats/templates/nats.conf.j2", server_name="t", listen="127.0.0.1", port=port,
                             monitor_port=free_port(), store_dir=str(tmp_path / "js"),
                             password_file=str(tmp_path / "pw"), nats_user="armada", tls_cert_file=None))
    launcher = tmp_path / "armada-nats-start"
    launcher.write_text(render("roles/nats/templates/armada-nats-start.j2", password_file=str(tmp_path / "pw"),
                               binary=binary, config=str(config)))
    launcher.chmod(0o755)
    unit = render("roles/nats/templates/armada-nats.service.j2", service_user="armada-nats", binary=binary,
                  hardening=unit_hardening(["/s"]),
                  config=str(config), store_dir="/s", launcher=str(launcher))
    assert f"ExecStart={launcher}" in unit and password not in unit and password not in config.read_text()
    server = subprocess.Popen([str(launcher)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                reply = nats_reply(port, "armada", password)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "nats-server did not listen"
                time.sleep(0.2)
        assert reply.startswith("PONG"), reply
        assert "Authorization Violation" in nats_reply(port, "armada", "wrong")
        assert "Authorization Violation" in nats_reply(port)
    finally:
        server.terminate()
        server.wait(10)


def test_nats_unit_without_a_password_runs_nats_itself():
    plain = render("roles/nats/templates/armada-nats.service.j2", service_user="armada-nats", hardening="",
                   binary="/usr/sbin/nats-server",
                   config="/c", store_dir="/s", launcher=None)
    assert "ExecStart=/usr/sbin/nats-server -c /c" in plain and "authorization" not in render(
        "roles/nats/templates/nats.conf.j2", server_name="a", listen="x", port=1, monitor_port=2, store_dir="/s",
        password_file=None, tls_cert_file=None)


def test_every_secret_key_is_marked_as_one():
    # Key.holds: the base role hands these files to the service user, the
    # deploy checks them before any change, cloud-init may bake them
    assert set(secret_file_keys()) == {"vllm_api_key_file", "model_hub_token_file", "nats_password_file",
                                       "etcd_password_file", "etcd_client_password_file", "metrics_password_file",
                                       "monitoring_scrape_password_file"}
