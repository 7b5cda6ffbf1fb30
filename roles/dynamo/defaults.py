"""Data keys of the dynamo role: NVIDIA Dynamo serving (an OpenAI-compatible
frontend and vLLM engine workers that register in etcd and talk over nats),
chosen per host or group with ``armada_serving: dynamo``."""

import re

from armada.keys import CERTIFICATE, PRIVATE_KEY, Key, at_least, host_address, list_of, package_name, port, secret_path, version
from armada.serving import DYNAMO_VLLM  # what each release pins (shared with the vllm role)

# ai-dynamo's requirements armada leaves out, with why:
# - aisimulate: a stub on PyPI that downloads its real wheel from a host other
#   than PyPI at install time (fails behind an egress proxy that allows PyPI
#   only); only Dynamo's planner imports it, and armada runs no planner.
DYNAMO_EXCLUDED_DEPS = ["aisimulate"]

KEYS = (
    Key("armada_serving", str, "vllm", "How a serving host serves: 'vllm' (vLLM's OpenAI server, armada-vllm."
        "service) or 'dynamo' (NVIDIA Dynamo: armada-dynamo-frontend.service + armada-dynamo-worker@ units on nats "
        "and etcd)", choices=("vllm", "dynamo")),
    Key("dynamo_version", str, "1.6.1", "ai-dynamo release installed into the serving venv (with the vLLM it pins: "
        + ", ".join(f"{d} -> vllm {v}" for d, v in DYNAMO_VLLM.items()) + ")", check=version),
    Key("dynamo_exclude_deps", list, list(DYNAMO_EXCLUDED_DEPS), "ai-dynamo requirements NOT installed "
        "(default: aisimulate, a planner-only stub that downloads from outside PyPI)",
        check=list_of(package_name, "a list of package names")),
    Key("dynamo_frontend_host", str, "127.0.0.1", "Address Dynamo's OpenAI-compatible frontend binds: loopback "
        "by default; Dynamo 1.6 has no API key, so beyond loopback only with armada_insecure_open_endpoints",
        check=host_address),
    Key("dynamo_frontend_port", int, 8080, "Port of Dynamo's frontend", check=port),
    Key("dynamo_worker_mode", str, "aggregated", "'aggregated' (workers prefill and decode) or 'disaggregated' "
        "(prefill workers hand the KV cache to decode workers through NIXL)", choices=("aggregated", "disaggregated")),
    Key("dynamo_workers", int, 1, "Aggregated mode: vLLM workers on the host (each with its share of the cores or "
        "GPUs)", check=at_least(1)),
    Key("dynamo_prefill_workers", int, 1, "Disaggregated mode: prefill workers on the host (0: this host only "
        "decodes, its prefill runs on other hosts of the namespace)", check=at_least(0)),
    Key("dynamo_decode_workers", int, 1, "Disaggregated mode: decode workers on the host (0: this host only "
        "prefills for decode workers on other hosts)", check=at_least(0)),
    Key("dynamo_discovery_backend", str, "etcd", "Where workers register (DYN_DISCOVERY_BACKEND): 'etcd' (the "
        "control plane's) or 'file' (this host only)", choices=("etcd", "file")),
    Key("dynamo_request_plane", str, "nats", "Frontend -> worker requests (DYN_REQUEST_PLANE): 'nats' or 'tcp'",
        choices=("nats", "tcp")),
    Key("dynamo_event_plane", str, "nats", "KV events (DYN_EVENT_PLANE): 'nats' or 'zmq'", choices=("nats", "zmq")),
    Key("dynamo_namespace", str, "dynamo", "Dynamo namespace the frontend and workers share",
        check=lambda v: None if re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", v) else "lowercase letters, digits, - and _"),
    Key("dynamo_nixl_base_port", int, 5600, "Disaggregated mode: NIXL side-channel port of the first worker; "
        "worker i uses base + i", check=port),
    Key("dynamo_nixl_host", str, "", "Disaggregated mode: this host's address its NIXL side channel binds and "
        "gives the workers of other hosts (VLLM_NIXL_SIDE_CHANNEL_HOST); empty: localhost, enough only when a "
        "namespace's prefill and decode workers share one host",
        check=lambda v: host_address(v) if v else None),
    Key("dynamo_kv_lease_s", int, 120, "Disaggregated mode: seconds a prefill worker keeps a finished request's KV "
        "blocks for the decode worker to read (vLLM's NixlConnector kv_lease_duration; upstream 30: the decode side "
        "renews it only once the request reached it and the NIXL handshake is done, which a slow host can miss: "
        "the blocks are then freed and the decode reads whatever is there)", check=at_least(6)),
    Key("dynamo_kv_load_failure", str, "fail", "Disaggregated mode: what a decode worker does when it cannot load "
        "the KV blocks (vLLM's kv_load_failure_policy): 'fail' the request, or 'recompute' the prompt itself "
        "(requests complete, transfer failures are hidden)", choices=("fail", "recompute")),
    Key("dynamo_etcd_lease_ttl", int, None, "Seconds of the etcd lease each Dynamo process keeps alive "
        "(ETCD_LEASE_TTL): a process that cannot renew it in time deregisters and exits; unset: Dynamo's own",
        nullable=True, check=at_least(5)),
    Key("dynamo_etcd_cert_file", str, None, "PEM certificate FILE ON THE HOST that Dynamo presents to a control "
        "plane etcd with etcd_client_cert_auth: signed by etcd_tls_ca_file, its CommonName the control plane's "
        "etcd_client_user (etcd logs Dynamo in as that user: readwrite on Dynamo's keys only); Dynamo's units get "
        "it, its key and the CA as systemd credentials", nullable=True, check=secret_path, holds=CERTIFICATE),
    Key("dynamo_etcd_key_file", str, None, "PEM private key FILE ON THE HOST of dynamo_etcd_cert_file (root's, "
        "0600: Dynamo's units get a private copy through LoadCredential)", nullable=True, check=secret_path,
        holds=PRIVATE_KEY),
    Key("dynamo_ready_timeout", int, 120, "Seconds a worker waits at start for nats and etcd to answer before "
        "it fails (systemd then restarts it)", check=at_least(1)),
)
