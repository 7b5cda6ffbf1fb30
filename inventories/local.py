"""The local lab (``armada lab up``): two nspawn hosts on this machine.

    armada lab up
    pyinfra inventories/local.py exec -- uname -m
    pyinfra inventories/local.py deploys/llm.py

Hosts, addresses and the key come from armada.lab.hosts; pyinfra treats every
module-level list/tuple here as a group, so helpers are underscored.
"""

from glob import glob

from armada.lab import hosts as _lab

_HOSTS = {host.name: host for host in _lab.HOSTS}


def _ssh(name):
    return (
        name,
        {
            "ssh_hostname": _HOSTS[name].address,
            "ssh_user": "root",
            "ssh_key": _lab.key_path(),
            "ssh_known_hosts_file": _lab.known_hosts_path(),
            # Lab opt-out: the hosts' keys change whenever the rootfs cache is rebuilt.
            # `armada lab up` writes known_hosts from the hosts' own keys, so a
            # pinned key still wins; accept-new only covers a missing entry.
            "ssh_strict_host_key_checking": "accept-new",
        },
    )


control_plane = (
    [_ssh("armada-cp")],
    {
        # armada data
        "armada_roles": ["base", "tcmalloc", "nats", "etcd"],
        "armada_proxy": f"http://{_lab.GATEWAY}:{_lab.PROXY_PORT}",  # http://10.213.0.1:8888
        "armada_ca_certs": sorted(glob("/usr/local/share/ca-certificates/*.crt")),
        # end armada data
    },
)

serving = (
    [_ssh("armada-serve")],
    {
        # armada data
        "armada_roles": ["base", "tcmalloc", "vllm", "model", "vllm_service"],
        "armada_control_plane": "armada-cp",
        "armada_proxy": f"http://{_lab.GATEWAY}:{_lab.PROXY_PORT}",  # http://10.213.0.1:8888
        "armada_ca_certs": sorted(glob("/usr/local/share/ca-certificates/*.crt")),
        # end armada data
    },
)
