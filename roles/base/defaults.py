"""Data keys of the base role (which roles a host runs, ``armada_roles``, is
the registry's own key: armada.registry)."""

import os

from armada.keys import (
    Key,
    absolute_path,
    at_least,
    git_ref,
    git_url,
    host_list,
    identifier,
    inventory_host,
    list_of,
    local_path,
    name,
    os_package,
    requirement,
    url,
)


def _ca_files(value):
    if not all(isinstance(v, str) for v in value):
        return "must be a list of file paths"
    bad = next((local_path(v) for v in value if local_path(v)), None)
    if bad:
        return bad
    missing = [v for v in value if not os.path.isfile(v)]
    return f"no such file(s) on the control machine: {', '.join(missing)}" if missing else None


def _install(value: str) -> str | None:
    """armada_install: a pip requirement, a wheel URL, or git+https://...@<ref>."""
    if value.startswith("git+"):
        head, sep, ref = value[4:].rpartition("@")
        if sep and "/" in head.partition("://")[2]:  # an @<ref> after the repository's path
            return git_url(head) or git_ref(ref.split("#", 1)[0])
        return git_url(value[4:])
    if "://" in value and " @ " not in value:
        return url(value)
    return requirement(value)


KEYS = (
    Key("armada_install", str, None, "armada cloud-init: how the instance installs armada itself: a pip "
        "requirement (armada==0.1.0), a wheel URL, or git+https://...@<ref>", nullable=True, check=lambda v: _install(v)),
    Key("armada_install_index_url", str, None, "armada cloud-init: the index armada_install and its dependencies "
        "come from (default: pip's own)", nullable=True, check=url),
    Key("armada_control_plane", str, None, "Inventory host whose nats and etcd this host uses; default: itself",
        nullable=True, check=inventory_host),
    Key("armada_proxy", str, None, "Egress HTTP proxy for apt, pip and downloads (http://host:port)",
        nullable=True, check=url),
    Key("armada_no_proxy", str, "localhost,127.0.0.1", "Hosts reached without the proxy (hosts, .domains, "
        "addresses or CIDRs, comma separated)", check=host_list),
    Key("armada_ca_certs", list, [], "Extra CA certificates (files on the control machine) the hosts must trust, "
        "e.g. a corporate TLS-inspecting proxy's", check=_ca_files),
    Key("armada_user", str, "armada", "Service user that runs vLLM and Dynamo (nats and etcd have their own: nats_service_user, "
        "etcd_service_user)", check=identifier),
    Key("armada_root", str, "/opt/armada", "Install root (venvs, wheelhouse)", check=absolute_path),
    Key("armada_data_dir", str, "/var/lib/armada", "Persistent data root (model cache, etcd, JetStream); "
        "never deleted by armada", check=absolute_path),
    Key("armada_health_report", str, "armada-health.json", "JSON health report written on the control machine "
        "(one entry per host) at the end of every deploy", check=local_path),
    Key("vllm_ready_timeout", int, 600, "Seconds the health check waits for vLLM to answer /health after a (re)start",
        check=lambda v: None if v >= 1 else "must be >= 1"),
    Key("armada_max_unavailable", int, 1, "armada upgrade: hosts flipped (and so possibly not serving) at once",
        check=lambda v: None if v >= 1 else "must be >= 1"),
    Key("armada_rollout_id", str, None, "Set by armada upgrade for its batches and their rollback: the flip records "
        "it, and deploys/rollback.py undoes only a flip of this rollout (unset: the last flip, whoever made it)",
        nullable=True, check=name),
    Key("armada_apt_lock_timeout", int, 300, "Seconds apt waits for a dpkg lock another process holds "
        "(unattended-upgrades, cloud-init) before failing with apt's message", check=at_least(0)),
    Key("armada_packages", list, [], "Extra OS packages for the host (installed with the base packages)",
        check=list_of(os_package, "a list of package names")),
    Key("armada_allow_unverified_ssh", bool, False, "Allow ssh_strict_host_key_checking 'no'/'off' (throwaway "
        "labs only); host keys are checked by default"),
    Key("armada_insecure_open_endpoints", bool, False, "Let vLLM, Dynamo's frontend, nats and etcd listen beyond "
        "loopback with no API key or password (and an etcd cluster's peers speak plain http): an isolated, trusted "
        "network only. Off: armada check refuses such data"),
    Key("armada_check_urls", bool, True, "Before changing anything, ask every URL the host's roles fetch from "
        "(torch index, wheelhouse, NVIDIA mirror, nats release) from the host itself; stop on one that does not answer"),
    Key("armada_config_dir", str, "/etc/armada", "Configuration files and env files", check=absolute_path),
)
