"""Data keys of the etcd role."""

from armada.keys import (
    CERTIFICATE,
    PRIVATE_KEY,
    SECRET,
    Key,
    absolute_path,
    group_name,
    host_address,
    identifier,
    name,
    port,
    secret_path,
    tls_keys,
)

# the keys NVIDIA Dynamo 1.6 reads and writes in etcd (v1/instances/, v1/mdc/,
# v1/event_channels/, v1/event_sources/): all the clients' user may touch
CLIENT_PREFIX = "v1/"

KEYS = (
    Key("etcd_listen", str, "127.0.0.1", "Address clients connect to; loopback unless other hosts use this one",
        check=host_address),
    Key("etcd_client_port", int, 2379, "Client port", check=port),
    Key("etcd_peer_port", int, 2380, "Peer port (cluster members)", check=port),
    Key("etcd_service_user", str, "armada-etcd", "System user etcd runs as (its own: it alone owns the data dir "
        "and its TLS key)", check=identifier, user_of="etcd"),
    Key("etcd_data_dir", str, "/var/lib/armada/etcd", "Data dir on persistent disk", check=absolute_path),
    Key("etcd_password_file", str, None, "File ON THE HOST holding the password of etcd's root user (on the etcd "
        "host only): armada enables etcd auth with it, clients then authenticate as etcd_client_user; "
        "0600, owned by root (only armada's own steps read it); never in a config, a command line or a log",
        nullable=True, check=secret_path, holds=SECRET),
    Key("etcd_client_user", str, "armada-client", "etcd user that clients of other hosts (Dynamo, armada's checks) "
        f"log in as: a role of the same name grants it readwrite on keys under {CLIENT_PREFIX} only (Dynamo's), "
        "never root", check=identifier),
    Key("etcd_client_password_file", str, None, "File ON THE HOST holding etcd_client_user's password: on the etcd "
        "host (armada creates the user with it) and on every host using that etcd; clients never hold root's "
        "etcd_password_file", nullable=True, check=secret_path, holds=SECRET),
    *tls_keys("etcd", "etcd", "on its client URLs (with etcd_tls_key_file and etcd_tls_ca_file): clients then "
              "use https; it must name 127.0.0.1 and the address clients connect to",
              "(set it on the etcd host and on every host using it)"),
    Key("etcd_client_cert_auth", bool, False, "etcd asks every client for a certificate signed by "
        "etcd_tls_ca_file (--client-cert-auth): a client without one cannot connect at all; with auth on, a "
        "certificate's CommonName names its etcd user (how Dynamo logs in: dynamo_etcd_cert_file). Needs "
        "etcd_tls_cert_file, a certificate allowing TLS client auth too (etcd's JSON gateway connects to etcd "
        "with it), and armada's own etcd_tls_client_cert_file on every host using this etcd"),
    Key("etcd_tls_client_cert_file", str, None, "PEM certificate FILE ON THE HOST that armada's own steps and "
        "checks present to an etcd with etcd_client_cert_auth (on the etcd host and every host using it): signed "
        "by etcd_tls_ca_file, with NO CommonName (etcd's JSON gateway, which armada speaks, refuses a certificate "
        "with one while auth is on); armada still logs in with the passwords", nullable=True, check=secret_path,
        holds=CERTIFICATE),
    Key("etcd_tls_client_key_file", str, None, "PEM private key FILE ON THE HOST of etcd_tls_client_cert_file, "
        "0600: root's, or on a monitoring host Prometheus' own (it presents the certificate to scrape such an "
        "etcd)", nullable=True, check=secret_path, holds=PRIVATE_KEY, reader="monitoring_service_user"),
    Key("etcd_cluster_group", str, None, "Inventory group whose hosts form one etcd cluster; default: a single "
        "member per host", nullable=True, check=group_name),
    Key("etcd_cluster_token", str, "armada-etcd", "initial-cluster-token of a new cluster", check=name),
)
