"""nats and etcd TLS from data: the checks on the files, the inventory's
refusals, what the roles render, and the lab's certificates in a real TLS
handshake (python's ssl, the same library the health probe uses on hosts)."""

import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import textwrap
import threading

import jinja2
import pytest
from conftest import ROOT

from armada.commands.secrets import pem_file_command
from armada.inventory import load_inventory, validate_inventory
from armada.lab.tls import make_tls
from armada.parsers.secrets import secret_file_problem
from armada.schema import cross_checks, with_defaults

NOBODY = "nobody"


@pytest.fixture(scope="module")
def pki():
    """A real CA and server certificate for 127.0.0.1, made by the lab's code."""
    folder = tempfile.mkdtemp(prefix="armada-tls-")
    os.chmod(folder, 0o755)
    paths = make_tls(os.path.join(folder, "tls"), "cp", ["127.0.0.1"], ["localhost"])
    os.chmod(os.path.join(folder, "tls"), 0o755)
    yield {key: pathlib.Path(path) for key, path in paths.items()}
    shutil.rmtree(folder)


def pem_problem(path, kind):
    result = subprocess.run(["sh", "-c", pem_file_command(str(path), kind, NOBODY)], capture_output=True, text=True)
    assert "PRIVATE KEY-----\n" not in result.stdout  # says what the file is like, never what it holds
    return secret_file_problem(result.stdout)


def test_the_lab_certificate_is_signed_by_its_ca_and_names_the_address(pki):
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(pki["ca"]), str(pki["cert"])],
                            capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stdout.strip().endswith(": OK"), verify.stdout + verify.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(pki["cert"]), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text


def test_pem_files_are_checked_for_their_kind(pki, tmp_path):
    for path in pki.values():
        path.chmod(0o644)
    assert pem_problem(pki["cert"], "certificate") is None
    assert pem_problem(pki["ca"], "certificate") is None
    assert pem_problem(pki["key"], "key") is None
    assert "no PEM certificate" in pem_problem(pki["key"], "certificate")
    assert "no PEM key" in pem_problem(pki["cert"], "key")
    password = tmp_path / "password"
    password.write_text("0123abcd\n")
    assert "no PEM key" in pem_problem(password, "key")
    assert "no such file" in pem_problem(tmp_path / "absent.crt", "certificate")


def test_a_client_checking_against_the_ca_completes_a_tls_handshake(pki):
    """The certificate and key as nats-server and etcd would load them, a client
    as the health probe builds it (ssl.create_default_context(cafile=...))."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(pki["cert"]), str(pki["key"]))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(tls.recv(4).upper())
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"ping")
            assert tls.recv(4) == b"PING"
    # without the CA, the same certificate is refused
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
    thread.join(10)
    listener.close()


def tls_gaps(name, data):
    """The TLS errors of one host's data (the nats and etcd roles' checks)."""
    return [error for error in cross_checks(name, with_defaults(data)) if "_tls_" in error.key]


def test_a_certificate_needs_its_key_and_etcd_its_ca():
    gaps = tls_gaps("cp", {"nats_tls_cert_file": "/s/c.crt", "etcd_tls_key_file": "/s/k.key"})
    assert [(e.host, e.key) for e in gaps] == [("cp", "nats_tls_key_file"), ("cp", "etcd_tls_cert_file")]
    gaps = tls_gaps("cp", {"etcd_tls_cert_file": "/s/c.crt", "etcd_tls_key_file": "/s/k.key"})
    assert [(e.host, e.key) for e in gaps] == [("cp", "etcd_tls_ca_file")]
    assert tls_gaps("cp", {"nats_tls_cert_file": "/s/c.crt", "nats_tls_key_file": "/s/k.key"}) == []


def test_a_client_of_a_tls_control_plane_needs_the_ca(tmp_path):
    path = tmp_path / "inv.py"
    path.write_text(textwrap.dedent("""
        cp = (["cp"], {"armada_roles": ["base", "nats", "etcd"], "nats_listen": "0.0.0.0", "etcd_listen": "0.0.0.0",
                       "armada_insecure_open_endpoints": True, "nats_tls_cert_file": "/s/cp.crt",
                       "nats_tls_key_file": "/s/cp-nats.key", "etcd_tls_cert_file": "/s/cp.crt",
                       "etcd_tls_key_file": "/s/cp-etcd.key",
                       "etcd_tls_ca_file": "/s/ca.crt"})
        serving = (["s1"], {"armada_control_plane": "cp", "model_id": "org/m", "etcd_tls_ca_file": "/s/ca.crt"})
    """))
    errors = validate_inventory(load_inventory(str(path)))
    assert [(e.host, e.key, e.value) for e in errors] == [("s1", "nats_tls_ca_file", None)], [str(e) for e in errors]
    assert "cp's nats speaks TLS" in str(errors[0])


def render(template, **values):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROOT)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.get_template(template).render(**values)


def test_nats_and_etcd_render_their_tls_settings():
    conf = render("roles/nats/templates/nats.conf.j2", server_name="a", listen="0.0.0.0", port=4222,
                  monitor_port=8222, store_dir="/s", password_file=None, tls_cert_file="/s/cp.crt",
                  tls_key_file="/s/cp.key")
    assert 'tls {\n  cert_file: "/s/cp.crt"\n  key_file: "/s/cp.key"\n}' in conf
    env = render("roles/etcd/templates/etcd.env.j2", member="a", data_dir="/d", listen_client_urls="u",
                 advertise_client_url="u", listen_peer_url="p", advertise_peer_url="p", initial_cluster="a=p",
                 cluster_token="t", unsupported_arch=None, cert_file="/s/cp.crt", key_file="/s/cp.key",
                 peer_tls=False, client_cert_auth=False)
    assert "ETCD_CERT_FILE=/s/cp.crt\nETCD_KEY_FILE=/s/cp.key\n" in env
    assert "ETCD_CLIENT_CERT_AUTH" not in env and "ETCD_TRUSTED_CA_FILE" not in env


def test_etcd_client_urls_are_https_with_a_certificate():
    from pyinfra.api import Inventory

    from armada.schema import with_defaults
    from roles.etcd import cluster_settings

    inventory = Inventory(([("cp", {"ssh_hostname": "10.0.0.5"})], {}))
    host = inventory.get_host("cp")
    data = with_defaults({"etcd_listen": "10.0.0.5", "etcd_tls_cert_file": "/s/c", "etcd_tls_key_file": "/s/k"})
    settings = cluster_settings(host, [host], data)
    assert settings["listen_client_urls"] == "https://127.0.0.1:2379,https://10.0.0.5:2379"
    assert settings["advertise_client_url"] == "https://10.0.0.5:2379"
    plain = cluster_settings(host, [host], with_defaults({"etcd_listen": "10.0.0.5"}))
    assert plain["advertise_client_url"] == "http://10.0.0.5:2379"


def test_this_hosts_etcd_and_the_ca_a_client_checks_it_with():
    from armada.commands.etcd import TlsFiles
    from armada.role_support import etcd_tls, local_etcd
    from armada.schema import with_defaults

    tls = with_defaults({"etcd_tls_cert_file": "/s/c", "etcd_tls_key_file": "/s/k", "etcd_tls_ca_file": "/s/ca"})
    assert local_etcd(tls) == ("https://127.0.0.1:2379", TlsFiles("/s/ca"))
    assert local_etcd(with_defaults({"etcd_tls_ca_file": "/s/ca"})) == ("http://127.0.0.1:2379", None)
    assert etcd_tls(tls, "https://10.0.0.5:2379") == TlsFiles("/s/ca")
    assert etcd_tls(tls, "http://10.0.0.5:2379") is None
    assert TlsFiles("/s/ca").curl_args() == " --cacert /s/ca"


def test_an_etcd_asking_for_client_certificates_gets_armadas_from_every_curl():
    from armada.commands.etcd import TlsFiles, etcd_client_user_script, etcd_curl, etcd_enable_auth_script
    from armada.facts.secrets import EtcdAuth, EtcdLogin
    from armada.role_support import etcd_tls, local_etcd
    from armada.schema import with_defaults

    data = with_defaults({"etcd_tls_cert_file": "/s/c", "etcd_tls_key_file": "/s/k", "etcd_tls_ca_file": "/s/ca",
                          "etcd_client_cert_auth": True, "etcd_tls_client_cert_file": "/s/armada.crt",
                          "etcd_tls_client_key_file": "/s/armada.key"})
    url, tls = local_etcd(data)
    assert tls == TlsFiles("/s/ca", "/s/armada.crt", "/s/armada.key") == etcd_tls(data, "https://10.0.0.5:2379")
    args = " --cacert /s/ca --cert /s/armada.crt --key /s/armada.key"
    assert etcd_curl(tls).endswith(args)
    # the auth setup (its /health wait too), the facts and the reads all present it
    for script in (etcd_enable_auth_script(url, "/s/root", tls=tls),
                   etcd_client_user_script(url, "/s/root", "armada-client", "/s/client", "v1/", tls=tls)):
        curls = [line for line in script.splitlines() if "curl " in line]
        assert curls and all(args in line for line in curls), script
    assert args in EtcdAuth().command(url, tls=tls) and args in EtcdLogin().command(url, "u", "/s/p", tls=tls)


def test_etcd_asks_clients_for_certificates_only_over_tls():
    from pyinfra.api import Inventory

    from armada.schema import with_defaults
    from roles.etcd import cluster_settings

    inventory = Inventory(([("cp", {"ssh_hostname": "10.0.0.5"})], {}))
    host = inventory.get_host("cp")
    data = with_defaults({"etcd_tls_cert_file": "/s/c", "etcd_tls_key_file": "/s/k", "etcd_tls_ca_file": "/s/ca",
                          "etcd_client_cert_auth": True})
    settings = cluster_settings(host, [host], data)
    assert settings["client_cert_auth"]
    env = render("roles/etcd/templates/etcd.env.j2", data_dir="/d", cluster_token="t", unsupported_arch=None,
                 cert_file="/s/c", key_file="/s/k", ca_file="/s/ca", **settings)
    assert "ETCD_CLIENT_CERT_AUTH=true\nETCD_TRUSTED_CA_FILE=/s/ca\n" in env
    assert not cluster_settings(host, [host], with_defaults({"etcd_client_cert_auth": True}))["client_cert_auth"]
