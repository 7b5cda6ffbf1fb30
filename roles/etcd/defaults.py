"""Data keys of the etcd role."""

from armada.keys import SECRET, Key, absolute_path, group_name, host_address, name, port, secret_path, tls_keys

KEYS = (
    Key("etcd_listen", str, "127.0.0.1", "Address clients connect to; loopback unless other hosts use this one",
        check=host_address),
    Key("etcd_client_port", int, 2379, "Client port", check=port),
    Key("etcd_peer_port", int, 2380, "Peer port (cluster members)", check=port),
    Key("etcd_data_dir", str, "/var/lib/armada/etcd", "Data dir on persistent disk", check=absolute_path),
    Key("etcd_password_file", str, None, "File ON THE HOST holding the password of etcd's root user (set it on "
        "the etcd host and on every host using it): armada enables etcd auth with it, clients then authenticate; "
        "0600, owned by the service user; never in a config, a command line or a log",
        nullable=True, check=secret_path, holds=SECRET),
    *tls_keys("etcd", "etcd", "on its client URLs (with etcd_tls_key_file and etcd_tls_ca_file): clients then "
              "use https; it must name 127.0.0.1 and the address clients connect to",
              "(set it on the etcd host and on every host using it)"),
    Key("etcd_cluster_group", str, None, "Inventory group whose hosts form one etcd cluster; default: a single "
        "member per host", nullable=True, check=group_name),
    Key("etcd_cluster_token", str, "armada-etcd", "initial-cluster-token of a new cluster", check=name),
)
