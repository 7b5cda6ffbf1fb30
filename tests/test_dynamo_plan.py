"""Dynamo serving, at plan level on real host snapshots: what a GB200 tray, a
Graviton and the lab's VM would get with ``armada_serving: dynamo`` (pins,
units, workers and their shares), and the data armada refuses offline.
The lab test (tests/test_lab_dynamo.py) serves through Dynamo for real."""

import json
import shlex
import subprocess
import textwrap

import jinja2
import pytest
from conftest import build_profile, host_dir

from armada import registry
from armada.errors import DataError
from armada.inventory import load_inventory, validate_inventory
from armada.parsers.cpu import parse_cpu_list
from armada.parsers.host import host_facts_from_outputs
from armada.schema import validate_host_data, with_defaults
from armada.serving import (
    dynamo_extras,
    dynamo_spec,
    install_id,
    plan_workers,
    serving_sandbox,
    serving_units,
    split,
    worker_parts,
)
from armada.snapshot import read_snapshot
from roles.dynamo import common_env, credentials, frontend_args
from roles.vllm import companion_packages

DYNAMO = {"armada_serving": "dynamo", "model_id": "Qwen/Qwen2.5-7B-Instruct", "vllm_version": "0.31.0"}


class _Data(dict):
    def get(self, key, default=None):
        return super().get(key, default)

    def dict(self):
        return dict(self)


class InventoryHost:
    """An inventory host as role_support sees it: a name and its data."""

    def __init__(self, name, **data):
        self.name = name
        self.data = _Data(data)


def data(**values):
    return with_defaults({**DYNAMO, **values})


def profile_of(name, **values):
    return build_profile(name, host_facts_from_outputs(read_snapshot(host_dir(name))), with_defaults({**DYNAMO, **values}))


def test_gb200_in_dynamo_mode_gets_cuda_vllm_pinned_by_the_release_and_gpus_split_between_workers():
    values = {"dynamo_worker_mode": "disaggregated", "dynamo_prefill_workers": 2, "dynamo_decode_workers": 2}
    profile, d = profile_of("gb200", **values), data(**values)
    assert validate_host_data("gb200", {**DYNAMO, **values}) == []
    # CUDA vLLM, the one ai-dynamo 1.6.1 pins, torch from PyPI (CUDA wheels for aarch64 since 2.11)
    assert profile.accelerator == "cuda" and profile.gpu_count == 4
    assert profile.vllm_spec == "vllm==0.31.0" and profile.torch_index_url is None
    assert dynamo_spec(d) == "ai-dynamo==1.6.1" and dynamo_extras(d) == ["nixl==1.4.1"]
    assert companion_packages(d) == ["torchvision"]
    # serving is Dynamo's frontend and workers in place of armada-vllm
    names = [r.name for r in registry.selected(d)]
    assert names[-1] == "dynamo" and "vllm_service" not in names
    workers = plan_workers("gb200", profile, d)
    assert [(w.name, w.part, w.env["CUDA_VISIBLE_DEVICES"]) for w in workers] == [
        ("prefill0", "prefill", "0"), ("prefill1", "prefill", "1"), ("decode0", "decode", "2"), ("decode1", "decode", "3")]
    for index, worker in enumerate(workers):
        args = list(worker.args)
        assert args[args.index("--tensor-parallel-size") + 1] == "1"
        assert args[args.index("--disaggregation-mode") + 1] == worker.part
        # prefill produces, decode reads; prefill keeps the blocks for the lease (vLLM 0.31's default: 30 s)
        assert json.loads(args[args.index("--kv-transfer-config") + 1]) == {
            "kv_connector": "NixlConnector", "kv_role": "kv_producer" if worker.part == "prefill" else "kv_consumer",
            "kv_load_failure_policy": "fail", "kv_connector_extra_config": {"kv_lease_duration": 120}}
        assert worker.env["VLLM_NIXL_SIDE_CHANNEL_PORT"] == str(5600 + index)
        assert "--gpu-memory-utilization" in args
    assert serving_units("gb200", profile, d) == ["armada-dynamo-frontend.service"] + [w.unit for w in workers]
    # a Dynamo install is its own venv: upgrading Dynamo never touches the serving one
    plain = with_defaults({"model_id": "m", "vllm_version": "0.31.0"})
    assert install_id(profile, d) != install_id(profile, plain)


def test_gb200_aggregated_two_workers_share_the_four_gpus_two_each():
    values = {"dynamo_workers": 2}
    profile, d = profile_of("gb200", **values), data(**values)
    workers = plan_workers("gb200", profile, d)
    assert [(w.name, w.env["CUDA_VISIBLE_DEVICES"]) for w in workers] == [("agg0", "0,1"), ("agg1", "2,3")]
    assert all(w.args[list(w.args).index("--tensor-parallel-size") + 1] == "2" for w in workers)
    assert not any("--disaggregation-mode" in w.args for w in workers)
    assert dynamo_extras(d) == []  # NIXL only for disaggregated serving


def test_graviton_workers_split_the_bound_cores_and_the_kv_cache():
    values = {"dynamo_worker_mode": "disaggregated", "vllm_kvcache_space_gib": 8}
    profile, d = profile_of("graviton3", **values), data(**values)
    assert profile.accelerator == "cpu"
    workers = plan_workers("graviton3", profile, d)
    shares = [parse_cpu_list(w.env["VLLM_CPU_OMP_THREADS_BIND"]) for w in workers]
    bound = sorted(c for rank in profile.omp_threads_bind.split("|") for c in parse_cpu_list(rank))
    # NIXL moves each worker's main thread onto the node's highest core: that core joins the
    # binding, and the lowest one is left to the API server instead
    highest = max(parse_cpu_list(profile.numa_nodes[0]))
    assert highest not in bound and sorted(shares[0] + shares[1]) == sorted(set(bound) - {bound[0]} | {highest})
    assert not set(shares[0]) & set(shares[1])
    assert [w.env["OMP_NUM_THREADS"] for w in workers] == [str(len(s)) for s in shares]
    assert [w.env["VLLM_CPU_KVCACHE_SPACE"] for w in workers] == ["4", "4"]
    transfer = json.loads(workers[0].args[list(workers[0].args).index("--kv-transfer-config") + 1])
    assert transfer["kv_buffer_device"] == "cpu"
    assert profile.torch_index_url == "https://download.pytorch.org/whl/cpu"  # torchvision+cpu comes from there too


def test_more_workers_than_gpus_is_refused_naming_host_key_and_value():
    with pytest.raises(DataError) as caught:
        plan_workers("gb200", profile_of("gb200"), data(dynamo_workers=5))
    assert (caught.value.host, caught.value.key, caught.value.value) == ("gb200", "dynamo_workers", 5)


def test_split_is_contiguous_and_even():
    assert split(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert worker_parts(data(dynamo_workers=2)) == [("agg0", "aggregated"), ("agg1", "aggregated")]


def test_common_env_points_at_the_control_plane_and_names_users_not_passwords():
    cp = InventoryHost("armada-cp", ssh_hostname="10.213.0.11", nats_listen="0.0.0.0", etcd_listen="0.0.0.0",
                       armada_roles=["base", "nats", "etcd"])
    d = data(nats_password_file="/etc/armada-secrets/nats-password",
             etcd_client_password_file="/etc/armada-secrets/etcd-client-password")
    env = common_env(profile_of("x86-lab-vm"), d, cp, with_defaults(cp.data))
    assert env["NATS_SERVER"] == "nats://10.213.0.11:4222" and env["ETCD_ENDPOINTS"] == "http://10.213.0.11:2379"
    assert (env["DYN_DISCOVERY_BACKEND"], env["DYN_REQUEST_PLANE"], env["DYN_EVENT_PLANE"]) == ("etcd", "nats", "nats")
    assert env["DYN_NAMESPACE"] == "dynamo"
    assert env["NATS_AUTH_USERNAME"] == "armada" and env["ETCD_AUTH_USERNAME"] == "armada-client"
    assert not any("PASSWORD" in name for name in env)  # the launcher reads those from the 0600 files
    assert frontend_args(d) == ["--http-host", "127.0.0.1", "--http-port", "8080"]


def test_etcd_endpoints_name_every_member_of_the_control_planes_cluster():
    """A serving host whose control plane is one member of an etcd cluster lists every member in
    ETCD_ENDPOINTS, its control plane first (Dynamo's runtime fails over between them): losing that
    one member does not cut the host off. A standalone etcd stays one endpoint."""
    from pyinfra.api import Config, Inventory, State

    from armada.role import RoleRun
    from armada.role_support import etcd_members

    member = {"etcd_cluster_group": "etcd_cluster", "etcd_listen": "0.0.0.0", "armada_roles": ["base", "etcd"],
              "etcd_tls_cert_file": "/etc/armada/tls/etcd.pem", "etcd_tls_key_file": "/etc/armada/tls/etcd-key.pem",
              "etcd_tls_ca_file": "/etc/armada/tls/ca.pem"}
    inventory = Inventory((
        [("e1", {**member, "ssh_hostname": "10.0.0.1"}), ("e2", {**member, "ssh_hostname": "10.0.0.2"}),
         ("e3", {**member, "ssh_hostname": "10.0.0.3", "etcd_client_port": 2479}),
         ("s1", {"armada_control_plane": "e2"})], {}),
        etcd_cluster=(["e1", "e2", "e3"], {}))
    State(inventory, Config())
    data_of = lambda h: with_defaults(h.data.dict())  # noqa: E731
    serve, cp = inventory.get_host("s1"), inventory.get_host("e2")
    profile = profile_of("x86-lab-vm")
    run = RoleRun(host=serve, inventory=inventory, profile=profile, data=data_of(serve), control_plane=cp,
                  cp_data=data_of(cp), data_of=data_of)
    env = common_env(profile, run.data, cp, run.cp_data, etcd_members(run))
    assert env["ETCD_ENDPOINTS"] == "https://10.0.0.2:2379,https://10.0.0.1:2379,https://10.0.0.3:2479"
    # the same for plain vLLM serving; a standalone etcd (no group) is its one URL
    from roles.vllm_service import service_env
    assert service_env(profile, run.data, cp, run.cp_data, etcd_members(run))["ETCD_ENDPOINTS"] == \
        env["ETCD_ENDPOINTS"]
    alone = RoleRun(host=serve, inventory=inventory, profile=profile, data=data_of(serve), control_plane=cp,
                    cp_data={**data_of(cp), "etcd_cluster_group": None}, data_of=data_of)
    assert etcd_members(alone) == []
    assert common_env(profile, run.data, cp, alone.cp_data, etcd_members(alone))["ETCD_ENDPOINTS"] == \
        "https://10.0.0.2:2379"


def render(template, **values):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader("."), undefined=jinja2.StrictUndefined)
    return env.get_template(template).render(**values)


def test_units_and_launcher():
    data_ = data(nats_password_file="/s/nats", etcd_client_password_file="/s/etcd-client")
    values = dict(service_user="armada", egress_env="/etc/armada/egress.env", current="/opt/armada/vllm/current",
                  home="/var/lib/armada/home", root="/opt/armada", credentials=credentials(data_),
                  hardening=serving_sandbox(profile_of("x86-lab-vm"), data_))
    worker = render("roles/dynamo/templates/armada-dynamo-worker@.service.j2", wait_control_plane=True, **values)
    assert "ExecStartPre=/opt/armada/bin/armada-wait-control-plane" in worker
    assert "EnvironmentFile=/opt/armada/vllm/current/armada-dynamo-worker-%i.env" in worker
    assert "ExecStart=/opt/armada/vllm/current/armada-dynamo dynamo.vllm " \
           "/opt/armada/vllm/current/armada-dynamo-worker-%i.args" in worker
    assert "User=armada" in worker and "NoNewPrivileges=true" in worker and "CapabilityBoundingSet=\n" in worker
    # the secrets: systemd credentials (root reads the 0600 files; the service user cannot)
    for unit in (worker, render("roles/dynamo/templates/armada-dynamo-frontend.service.j2", wait_control_plane=True,
                                **values)):
        assert "LoadCredential=nats-password:/s/nats\nLoadCredential=etcd-password:/s/etcd-client\n" in unit
    frontend = render("roles/dynamo/templates/armada-dynamo-frontend.service.j2", wait_control_plane=True, **values)
    assert "dynamo.frontend /opt/armada/vllm/current/armada-dynamo-frontend.args" in frontend
    # a component that lost its etcd lease exits 0: both come back anyway
    assert "\nRestart=always\n" in worker and "\nRestart=always\n" in frontend
    launcher = render("roles/dynamo/templates/armada-dynamo.j2", python="/v/bin/python",
                      credentials={"nats-password": "/s/nats"})
    assert 'NATS_AUTH_PASSWORD=$(cat "$CREDENTIALS_DIRECTORY/nats-password")' in launcher
    assert "ETCD_AUTH_PASSWORD" not in launcher and "/s/nats" not in launcher
    subprocess.run(["sh", "-n", "-c", launcher], check=True)
    wait = render("roles/dynamo/templates/armada-wait-control-plane.j2", timeout=120)
    subprocess.run(["bash", "-n", "-c", wait], check=True)


def test_launcher_passes_the_quoted_arguments_through(tmp_path):
    """The launcher really runs: arguments with JSON and spaces arrive intact."""
    worker = plan_workers("gb200", profile_of("gb200"), data(dynamo_worker_mode="disaggregated"))[0]
    args_file = tmp_path / "w.args"
    args_file.write_text(" ".join(shlex.quote(a) for a in worker.args) + "\n")
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nshift 2\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n")
    fake_python.chmod(0o755)
    launcher = tmp_path / "armada-dynamo"
    launcher.write_text(render("roles/dynamo/templates/armada-dynamo.j2", python=str(fake_python),
                               credentials={}))
    launcher.chmod(0o755)
    out = subprocess.run([str(launcher), "dynamo.vllm", str(args_file)], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == list(worker.args)


# name: (data for serving host s1, key, value named in the error, words in the message)
BAD = {
    "dynamo_release_unknown": ({"dynamo_version": "9.9.9"}, "dynamo_version", "9.9.9", "armada knows"),
    "dynamo_with_other_vllm": ({"vllm_version": "0.32.0"}, "vllm_version", "0.32.0", "ai-dynamo 1.6.1 runs vLLM 0.31.0"),
    "unknown_worker_mode": ({"dynamo_worker_mode": "split"}, "dynamo_worker_mode", "split", "must be one of"),
    "unknown_serving": ({"armada_serving": "triton"}, "armada_serving", "triton", "must be one of"),
    "nats_plane_without_nats": ({"armada_roles": ["base", "etcd", "vllm", "model", "vllm_service"]}, "dynamo_request_plane",
                                "nats", "no nats host"),
    "torchvision_excluded": ({"vllm_exclude_deps": ["torchvision"]}, "vllm_exclude_deps", ["torchvision"],
                             "imports torchvision"),
    "namespace_upper": ({"dynamo_namespace": "Prod"}, "dynamo_namespace", "Prod", "lowercase"),
    "frontend_on_etcd_port": ({"dynamo_frontend_port": 2379}, "dynamo_frontend_port", 2379, "the same port"),
    "disaggregated_without_workers": ({"dynamo_worker_mode": "disaggregated", "dynamo_prefill_workers": 0,
                                       "dynamo_decode_workers": 0}, "dynamo_prefill_workers", 0, "no worker on this host"),
    "prefill_with_no_decode_anywhere": ({"dynamo_worker_mode": "disaggregated", "dynamo_decode_workers": 0},
                                        "dynamo_decode_workers", 0, "no decode worker in Dynamo namespace 'dynamo'"),
    "nixl_host_not_an_address": ({"dynamo_nixl_host": "10.0.0.1; rm"}, "dynamo_nixl_host", "10.0.0.1; rm",
                                 "an IP address"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_dynamo_data_is_one_clear_error(case, tmp_path):
    values, key, value, words = BAD[case]
    path = tmp_path / "inv.py"
    path.write_text(textwrap.dedent(f"""
        serving = (["s1"], {{**{DYNAMO!r}, **{values!r}}})
    """))
    errors = validate_inventory(load_inventory(str(path)))
    assert len(errors) == 1, [str(e) for e in errors]
    assert (errors[0].host, errors[0].key, errors[0].value) == ("s1", key, value), str(errors[0])
    assert words in str(errors[0]), str(errors[0])


@pytest.mark.parametrize("tls, refused", [("etcd", True), ("nats", False), ("both", True), ("local etcd", True)])
def test_dynamo_on_an_etcd_speaking_tls_is_refused_before_any_change(tmp_path, tls, refused):
    """Dynamo 1.6.1's etcd client, given a password, verifies TLS against no root at all (run against a
    real etcd with the lab's CA: etcd logs "tls: unknown certificate authority"): a Dynamo host whose
    etcd speaks TLS is refused offline, naming the host and armada_serving; TLS on nats alone is served."""
    ca = {"nats_tls_ca_file": "/etc/armada/ca.pem", "etcd_tls_ca_file": "/etc/armada/ca.pem"}
    nats = {"nats_tls_cert_file": "/etc/armada/cp.pem", "nats_tls_key_file": "/etc/armada/nats-key.pem"}
    etcd = {"etcd_tls_cert_file": "/etc/armada/cp.pem", "etcd_tls_key_file": "/etc/armada/etcd-key.pem"}
    server = {"etcd": etcd, "nats": nats, "both": {**nats, **etcd}, "local etcd": etcd}[tls]
    path = tmp_path / "inv.py"
    if tls == "local etcd":
        path.write_text(textwrap.dedent(f"""
            serving = (["s1"], {{**{DYNAMO!r}, **{ca!r}, **{server!r},
                                 "armada_roles": ["base", "nats", "etcd", "vllm", "model", "vllm_service"]}})
        """))
    else:
        path.write_text(textwrap.dedent(f"""
            cp = (["cp"], {{"armada_roles": ["base", "nats", "etcd"], "etcd_listen": "0.0.0.0",
                           "nats_listen": "0.0.0.0", "armada_insecure_open_endpoints": True, **{ca!r},
                           **{server!r}}})
            serving = (["s1"], {{**{DYNAMO!r}, **{ca!r}, "armada_control_plane": "cp",
                                 "armada_roles": ["base", "vllm", "model", "vllm_service"]}})
        """))
    errors = validate_inventory(load_inventory(str(path)))
    if refused:
        assert [(e.host, e.key, e.value) for e in errors] == [("s1", "armada_serving", "dynamo")], errors
        assert "speaks TLS" in str(errors[0]) and "client certificate" in str(errors[0])
    else:
        assert errors == []


CERTS = {"etcd_tls_client_cert_file": "/etc/armada/armada-client.pem", "etcd_tls_client_key_file": "/etc/armada/armada-client.key",
         "dynamo_etcd_cert_file": "/etc/armada/dynamo.pem", "dynamo_etcd_key_file": "/etc/armada/dynamo.key"}


def cert_inventory(tmp_path, cp_extra, serving_extra):
    """A control plane whose etcd speaks TLS with passwords, and a Dynamo host using it."""
    ca = {"etcd_tls_ca_file": "/etc/armada/ca.pem"}
    path = tmp_path / "inv.py"
    path.write_text(textwrap.dedent(f"""
        cp = (["cp"], {{"armada_roles": ["base", "nats", "etcd"], "etcd_listen": "0.0.0.0", "nats_listen": "0.0.0.0",
                       "nats_password_file": "/s/nats", "etcd_password_file": "/s/etcd",
                       "etcd_client_password_file": "/s/etcd-client",
                       "etcd_tls_cert_file": "/etc/armada/cp.pem", "etcd_tls_key_file": "/etc/armada/etcd-key.pem",
                       **{ca!r}, **{cp_extra!r}}})
        serving = (["s1"], {{**{DYNAMO!r}, **{ca!r}, "armada_control_plane": "cp", "nats_password_file": "/s/nats",
                             "etcd_client_password_file": "/s/etcd-client",
                             "armada_roles": ["base", "vllm", "model", "vllm_service"], **{serving_extra!r}}})
    """))
    return validate_inventory(load_inventory(str(path)))


@pytest.mark.parametrize("case, cp_extra, serving_extra, wanted", [
    ("served", {"etcd_client_cert_auth": True, **CERTS}, CERTS, []),
    ("no client certificate auth", {}, CERTS, [("s1", "armada_serving", "dynamo")]),
    ("no Dynamo certificate", {"etcd_client_cert_auth": True, **CERTS},
     {k: v for k, v in CERTS.items() if not k.startswith("dynamo")},
     [("s1", "dynamo_etcd_cert_file", None), ("s1", "dynamo_etcd_key_file", None)]),
    ("no armada certificate on the client", {"etcd_client_cert_auth": True, **CERTS},
     {k: v for k, v in CERTS.items() if k.startswith("dynamo")},
     [("s1", "etcd_tls_client_cert_file", None), ("s1", "etcd_tls_client_key_file", None)]),
    ("no armada certificate on the etcd host", {"etcd_client_cert_auth": True}, CERTS,
     [("cp", "etcd_tls_client_cert_file", None), ("cp", "etcd_tls_client_key_file", None)]),
])
def test_dynamo_on_an_etcd_asking_for_client_certificates(tmp_path, case, cp_extra, serving_extra, wanted):
    """The route for Dynamo over a TLS etcd: etcd asks every client for a certificate (etcd_client_cert_auth),
    Dynamo presents one whose CommonName is its etcd user, armada's own steps a CN-less one (etcd's JSON
    gateway refuses a CN while auth is on). Every missing piece is named offline, host and key."""
    errors = cert_inventory(tmp_path, cp_extra, serving_extra)
    assert [(e.host, e.key, e.value) for e in errors] == wanted, [str(e) for e in errors]
    if case == "no client certificate auth":
        assert "etcd_client_cert_auth: true on cp" in str(errors[0])
    if case == "no Dynamo certificate":
        assert "'armada-client'" in str(errors[0])


def test_a_dynamo_certificate_for_a_plain_etcd_is_refused(tmp_path):
    path = tmp_path / "inv.py"
    path.write_text(textwrap.dedent(f"""
        serving = (["s1"], {{**{DYNAMO!r}, "dynamo_etcd_cert_file": "/s/d.pem", "dynamo_etcd_key_file": "/s/d.key"}})
    """))
    errors = validate_inventory(load_inventory(str(path)))
    assert [(e.host, e.key) for e in errors] == [("s1", "dynamo_etcd_cert_file")], [str(e) for e in errors]
    assert "plain http" in str(errors[0])


def test_dynamo_logs_in_to_etcd_with_its_certificate_as_pem_text_not_a_password(tmp_path):
    """Dynamo's etcd client prefers ETCD_AUTH_USERNAME/PASSWORD when both are set (and then drops the CA): with
    a certificate neither is handed over; the CA, certificate and key arrive as systemd credentials and
    reach Dynamo as PEM text (Certificate::from_pem), the wait for etcd presents them too."""
    cp_host = InventoryHost("cp", ssh_hostname="10.0.0.5", etcd_listen="0.0.0.0", armada_roles=["base", "nats", "etcd"])
    cp = with_defaults({**cp_host.data, "etcd_tls_cert_file": "/s/cp.pem", "etcd_tls_key_file": "/s/cp.key",
                        "etcd_client_cert_auth": True, "etcd_password_file": "/s/root",
                        "etcd_client_password_file": "/s/etcd-client"})
    host = data(etcd_tls_ca_file="/s/ca.pem", etcd_client_password_file="/s/etcd-client",
                dynamo_etcd_cert_file="/s/d.pem", dynamo_etcd_key_file="/s/d.key")
    env = common_env(profile_of("x86-lab-vm"), host, cp_host, cp)
    assert "ETCD_AUTH_USERNAME" not in env and env["ETCD_ENDPOINTS"].startswith("https://")
    named = credentials(host)
    assert named == {"etcd-ca": "/s/ca.pem", "etcd-cert": "/s/d.pem", "etcd-key": "/s/d.key"}
    # the launcher really runs: Dynamo's process sees the PEM text, and no password
    creds = tmp_path / "creds"
    creds.mkdir()
    for name, text in (("etcd-ca", "CA PEM"), ("etcd-cert", "CERT PEM"), ("etcd-key", "KEY PEM")):
        (creds / name).write_text(text + "\n")
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nenv | grep '^ETCD_AUTH' | sort\n")
    fake_python.chmod(0o755)
    launcher = tmp_path / "armada-dynamo"
    launcher.write_text(render("roles/dynamo/templates/armada-dynamo.j2", python=str(fake_python), credentials=named))
    launcher.chmod(0o755)
    (tmp_path / "args").write_text("\n")
    out = subprocess.run([str(launcher), "dynamo.frontend", str(tmp_path / "args")], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(creds),
                                          "ETCD_AUTH_CA": "/s/ca.pem"})
    assert out.stdout.splitlines() == ["ETCD_AUTH_CA=CA PEM", "ETCD_AUTH_CLIENT_CERT=CERT PEM",
                                       "ETCD_AUTH_CLIENT_KEY=KEY PEM"]
    wait = render("roles/dynamo/templates/armada-wait-control-plane.j2", timeout=120)
    assert '--cert "$CREDENTIALS_DIRECTORY/etcd-cert"' in wait and '--key "$CREDENTIALS_DIRECTORY/etcd-key"' in wait


def test_a_control_plane_without_nats_is_refused_for_a_dynamo_host(tmp_path):
    path = tmp_path / "inv.py"
    path.write_text(textwrap.dedent(f"""
        cp = (["cp"], {{"armada_roles": ["base", "etcd"], "etcd_listen": "0.0.0.0",
                       "armada_insecure_open_endpoints": True}})
        serving = (["s1"], {{**{DYNAMO!r}, "armada_control_plane": "cp",
                             "armada_roles": ["base", "vllm", "model", "vllm_service"]}})
    """))
    errors = validate_inventory(load_inventory(str(path)))
    assert [(e.host, e.key) for e in errors] == [("s1", "dynamo_request_plane")]
    assert "the control plane cp runs no nats" in str(errors[0])


CROSS = textwrap.dedent("""
    cp = (["cp"], {"armada_roles": ["base", "nats", "etcd"], "nats_listen": "0.0.0.0", "etcd_listen": "0.0.0.0",
               "armada_insecure_open_endpoints": True})
    prefill = (["p1"], {**DYNAMO, "armada_control_plane": "cp", "armada_roles": ["base", "vllm", "model", "vllm_service"],
                        "dynamo_worker_mode": "disaggregated", "dynamo_decode_workers": 0, **P1})
    decode = (["d1"], {**DYNAMO, "armada_control_plane": "cp", "armada_roles": ["base", "vllm", "model", "vllm_service"],
                       "dynamo_worker_mode": "disaggregated", "dynamo_prefill_workers": 0, **D1})
""")


def cross_inventory(tmp_path, p1, d1):
    path = tmp_path / "inv.py"
    path.write_text(f"DYNAMO = {DYNAMO!r}\nP1 = {p1!r}\nD1 = {d1!r}\n" + CROSS)
    return load_inventory(str(path))


def test_prefill_on_one_gb200_decode_on_another_each_names_its_nixl_address(tmp_path):
    """Two GB200 trays, one namespace: all four GPUs of p1 prefill, all four of
    d1 decode; each worker's side channel is bound and advertised at its
    host's address, one port per worker."""
    assert validate_inventory(cross_inventory(tmp_path, {"dynamo_prefill_workers": 4, "dynamo_nixl_host": "10.0.0.1"},
                                              {"dynamo_decode_workers": 4, "dynamo_nixl_host": "10.0.0.2"})) == []
    values = {"dynamo_worker_mode": "disaggregated", "dynamo_prefill_workers": 4, "dynamo_decode_workers": 0,
              "dynamo_nixl_host": "10.0.0.1"}
    workers = plan_workers("p1", profile_of("gb200", **values), data(**values))
    assert [w.name for w in workers] == ["prefill0", "prefill1", "prefill2", "prefill3"]
    assert [w.env["CUDA_VISIBLE_DEVICES"] for w in workers] == ["0", "1", "2", "3"]
    assert {w.env["VLLM_NIXL_SIDE_CHANNEL_HOST"] for w in workers} == {"10.0.0.1"}
    assert [w.env["VLLM_NIXL_SIDE_CHANNEL_PORT"] for w in workers] == ["5600", "5601", "5602", "5603"]
    assert all("--disaggregation-mode" in w.args and w.args[w.args.index("--disaggregation-mode") + 1] == "prefill"
               for w in workers)


def test_a_namespace_across_hosts_needs_each_hosts_nixl_address(tmp_path):
    errors = validate_inventory(cross_inventory(tmp_path, {"dynamo_nixl_host": "10.0.0.1"}, {}))
    assert [(e.host, e.key, e.value) for e in errors] == [("d1", "dynamo_nixl_host", None)]
    assert "namespace 'dynamo' spans p1, d1" in str(errors[0])
    # one host with both parts keeps localhost
    values = {"dynamo_worker_mode": "disaggregated"}
    assert "VLLM_NIXL_SIDE_CHANNEL_HOST" not in plan_workers("lab", profile_of("x86-lab-vm", vllm_cpu_reserved_cores=0,
                                                                                **values),
                                                             data(vllm_cpu_reserved_cores=0, **values))[0].env


def test_prefill_only_hosts_with_no_decode_in_their_namespace_are_refused(tmp_path):
    errors = validate_inventory(cross_inventory(tmp_path, {"dynamo_nixl_host": "10.0.0.1"},
                                                {"dynamo_nixl_host": "10.0.0.2", "dynamo_namespace": "other"}))
    assert sorted((e.host, e.key) for e in errors) == [("d1", "dynamo_prefill_workers"), ("p1", "dynamo_decode_workers")]


def test_nixl_binding_puts_each_nodes_highest_core_in_the_binding():
    from armada.serving import nixl_binding

    assert nixl_binding([0], [[0, 1]]) == [1]  # a 2-core host keeping a core free: the forward pass on 1, the API on 0
    assert nixl_binding([0, 1, 2, 4, 5, 6], [[0, 1, 2, 3], [4, 5, 6, 7]]) == [1, 2, 3, 5, 6, 7]
    assert nixl_binding([0, 1, 2, 3], [[0, 1, 2, 3]]) == [0, 1, 2, 3]  # nothing reserved: unchanged
    lab = profile_of("x86-lab-vm", dynamo_worker_mode="disaggregated")
    prefill = plan_workers("lab", lab, data(dynamo_worker_mode="disaggregated", dynamo_prefill_workers=1,
                                            dynamo_decode_workers=0))[0]
    # the lab's 2-core host binds both cores (armada.profile.RESERVE_FROM_CORES): nothing to move
    assert prefill.env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    kept = profile_of("x86-lab-vm", dynamo_worker_mode="disaggregated", vllm_cpu_reserved_cores=1)
    prefill = plan_workers("lab", kept, data(dynamo_worker_mode="disaggregated", dynamo_prefill_workers=1,
                                             dynamo_decode_workers=0, vllm_cpu_reserved_cores=1))[0]
    assert prefill.env["VLLM_CPU_OMP_THREADS_BIND"] == "1"


def test_the_etcd_lease_ttl_reaches_every_dynamo_process_when_set():
    from roles.dynamo import common_env

    profile = profile_of("x86-lab-vm")
    assert "ETCD_LEASE_TTL" not in common_env(profile, data(), None, data())
    assert common_env(profile, data(dynamo_etcd_lease_ttl=60), None, data())["ETCD_LEASE_TTL"] == "60"


def test_a_completion_is_asked_again_while_the_frontend_has_no_live_worker(monkeypatch):
    """The frontend answers 503 while a stale instance of a restarted worker is listed, then 404 (no body)
    once its lease expired and the model was dropped, until the new worker registers (the lab's journal,
    right after etcd switched to TLS): the health check asks again until the worker serves; any other
    answer, or one of those past the timeout, is final."""
    from roles.dynamo import health

    busy = {"message": "Service temporarily unavailable", "type": "Service Unavailable", "code": 503}
    served = {"choices": [{"message": {"content": "hi"}}], "usage": {"completion_tokens": 2}}
    answers = [(503, busy), (404, ""), (200, served)]
    monkeypatch.setattr(health, "post_status", lambda host, url, body: answers.pop(0))
    monkeypatch.setattr(health.time, "sleep", lambda s: None)
    ok, reply, _ = health.completion_until_served(None, "u", {}, timeout=60)
    assert ok and reply == served and not answers
    answers[:] = [(400, {"error": "bad request"})]
    assert health.completion_until_served(None, "u", {}, timeout=60) == (False, "HTTP 400: {'error': 'bad request'}", 0)
    monkeypatch.setattr(health, "post_status", lambda host, url, body: (503, busy))
    ok, reply, _ = health.completion_until_served(None, "u", {}, timeout=0)
    assert not ok and "HTTP 503" in reply


def test_post_status_splits_the_status_from_the_answer(monkeypatch):
    from roles.dynamo import health

    seen = {}

    def run(host, command):
        seen["command"] = command
        return True, '{"usage": {"completion_tokens": 1}}\n200'
    monkeypatch.setattr(health, "run_quiet", run)
    assert health.post_status(None, "http://127.0.0.1:8080/v1/chat/completions", {"a": "it's"}) == \
        (200, {"usage": {"completion_tokens": 1}})
    assert "-w '\\n%{http_code}'" in seen["command"]
    monkeypatch.setattr(health, "run_quiet", lambda host, command: (True, "\n404"))
    assert health.post_status(None, "u", {}) == (404, "")
    monkeypatch.setattr(health, "run_quiet", lambda host, command: (False, "curl: (7) Failed to connect"))
    assert health.post_status(None, "u", {}) == (0, "curl: (7) Failed to connect")
