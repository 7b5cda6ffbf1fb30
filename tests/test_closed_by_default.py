"""Closed by default (issue 16): what armada sets up answers only on loopback
unless data opens it on purpose, with an API key or a password, or with the
opt-out key whose name says what it does. Offline: the same validation
`armada check` and every deploy run first."""

import os
import textwrap

import jinja2
from conftest import armada
from test_roles import FakeHost

from armada.inventory import host_data, load_inventory, validate_inventory
from armada.schema import with_defaults
from roles.dynamo.defaults import KEYS as DYNAMO_KEYS
from roles.etcd import cluster_settings
from roles.vllm.defaults import KEYS as VLLM_KEYS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVING = {"armada_roles": ["base", "vllm", "model", "vllm_service"], "model_id": "org/model"}
CONTROL_PLANE = {"armada_roles": ["base", "nats", "etcd"]}


def errors_of(tmp_path, text):
    path = tmp_path / f"inv{len(list(tmp_path.iterdir()))}.py"  # one file per inventory
    path.write_text(textwrap.dedent(text))
    return [(e.host, e.key, e.value) for e in validate_inventory(load_inventory(str(path)))]


def test_the_serving_endpoints_bind_loopback_by_default():
    defaults = {k.name: k.default for k in (*VLLM_KEYS, *DYNAMO_KEYS)}
    assert defaults["vllm_host"] == "127.0.0.1" and defaults["dynamo_frontend_host"] == "127.0.0.1"
    data = with_defaults({})
    assert data["nats_listen"] == "127.0.0.1" and data["etcd_listen"] == "127.0.0.1"
    assert data["armada_insecure_open_endpoints"] is False


def test_every_open_endpoint_without_a_key_or_password_is_refused_by_name(tmp_path):
    errors = errors_of(tmp_path, f"""
        cp = (["cp"], {{**{CONTROL_PLANE!r}, "nats_listen": "0.0.0.0", "etcd_listen": "10.0.0.5"}})
        serving = (["s1"], {{**{SERVING!r}, "vllm_host": "0.0.0.0"}})
    """)
    assert errors == [("cp", "nats_listen", "0.0.0.0"), ("cp", "etcd_listen", "10.0.0.5"),
                      ("s1", "vllm_host", "0.0.0.0")]


def test_loopback_in_any_spelling_is_closed(tmp_path):
    errors = errors_of(tmp_path, f"""
        cp = (["cp"], {{**{CONTROL_PLANE!r}, "nats_listen": "::1", "etcd_listen": "localhost"}})
        serving = (["s1"], {{**{SERVING!r}, "vllm_host": "127.0.0.2"}})
    """)
    assert errors == []


def test_a_key_or_password_opens_an_endpoint(tmp_path):
    errors = errors_of(tmp_path, f"""
        cp = (["cp"], {{**{CONTROL_PLANE!r}, "nats_listen": "0.0.0.0", "etcd_listen": "0.0.0.0",
                       "nats_password_file": "/etc/s/nats", "etcd_password_file": "/etc/s/etcd"}})
        serving = (["s1"], {{**{SERVING!r}, "vllm_host": "0.0.0.0", "vllm_api_key_file": "/etc/s/api-key"}})
    """)
    assert errors == []


def test_the_opt_out_opens_them_on_purpose(tmp_path):
    errors = errors_of(tmp_path, f"""
        cp = (["cp"], {{**{CONTROL_PLANE!r}, "nats_listen": "0.0.0.0", "etcd_listen": "0.0.0.0",
                       "armada_insecure_open_endpoints": True}})
        serving = (["s1"], {{**{SERVING!r}, "vllm_host": "0.0.0.0", "armada_insecure_open_endpoints": True}})
    """)
    assert errors == []


def test_an_etcd_cluster_needs_peer_tls(tmp_path):
    members = {**CONTROL_PLANE, "etcd_cluster_group": "etcd_members", "etcd_listen": "0.0.0.0",
               "etcd_password_file": "/etc/s/etcd"}
    errors = errors_of(tmp_path, f"""
        etcd_members = (["e1", "e2", "e3"], {members!r})
    """)
    assert errors == [(name, "etcd_cluster_group", "etcd_members") for name in ("e1", "e2", "e3")]
    tls = {**members, "etcd_tls_cert_file": "/etc/s/etcd.crt", "etcd_tls_key_file": "/etc/s/etcd.key",
           "etcd_tls_ca_file": "/etc/s/ca.crt"}
    assert errors_of(tmp_path, f"""
        etcd_members = (["e1", "e2", "e3"], {tls!r})
    """) == []


def test_a_clusters_peers_speak_tls_with_a_certificate():
    members = [FakeHost(f"cp-{i}", ssh_hostname=f"10.0.0.{i}") for i in (1, 2, 3)]
    data = with_defaults({"etcd_listen": "0.0.0.0", "etcd_tls_cert_file": "/s/e.crt", "etcd_tls_key_file": "/s/e.key",
                          "etcd_tls_ca_file": "/s/ca.crt"})
    settings = cluster_settings(members[0], members, data)
    assert settings["initial_cluster"].count("=https://10.0.0.") == 3 and settings["peer_tls"]
    assert settings["listen_peer_url"] == "https://0.0.0.0:2380"
    env = jinja2.Template(open(f"{ROOT}/roles/etcd/templates/etcd.env.j2").read(), undefined=jinja2.StrictUndefined) \
        .render(data_dir="/d", cluster_token="t", unsupported_arch=None, cert_file="/s/e.crt", key_file="/s/e.key",
                ca_file="/s/ca.crt", **settings)
    assert "ETCD_PEER_CERT_FILE=/s/e.crt\nETCD_PEER_KEY_FILE=/s/e.key\nETCD_PEER_TRUSTED_CA_FILE=/s/ca.crt\n" \
           "ETCD_PEER_CLIENT_CERT_AUTH=true\n" in env
    single = cluster_settings(members[0], members[:1], data)
    assert not single["peer_tls"] and single["listen_peer_url"] == "http://127.0.0.1:2380"


def test_the_shipped_example_inventory_passes_and_opens_with_keys():
    result = armada("check", "inventories/lab.py")
    assert result.returncode == 0, result.stderr
    for host in load_inventory("inventories/lab.py"):
        data = with_defaults(host_data(host))
        assert data["vllm_host"] == "0.0.0.0" and data["vllm_api_key_file"]
        assert not data["armada_insecure_open_endpoints"]
