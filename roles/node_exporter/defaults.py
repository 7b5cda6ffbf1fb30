"""Data keys of the node_exporter role (also read by the monitoring role, which scrapes it)."""

from armada.keys import SECRET, Key, absolute_path, host_address, identifier, name, port, secret_path

KEYS = (
    Key("node_exporter_listen", str, "127.0.0.1", "Address Prometheus' node exporter binds: loopback unless a "
        "monitoring host elsewhere scrapes it (then with metrics_password_file)", check=host_address),
    Key("node_exporter_port", int, 9100, "Port of the node exporter", check=port),
    Key("node_exporter_service_user", str, "armada-node-exporter", "System user the node exporter runs as (its "
        "own)", check=identifier, user_of="node_exporter"),
    Key("node_exporter_textfile_dir", str, "/var/lib/armada/node-exporter", "Folder of the exporter's textfile "
        "collector: armada's own probes write their .prom files there (nats and JetStream on hosts running nats, "
        "which Prometheus cannot scrape directly)", check=absolute_path),
    Key("node_exporter_nats_interval", int, 15, "Seconds between two probes of nats' /healthz and /jsz (hosts "
        "running nats): what the JetStream alert sees (it fires when the last probe is over 120 s old)",
        check=lambda v: None if 5 <= v <= 60 else "must be 5 to 60 seconds"),
    Key("metrics_user", str, "armada-metrics", "User name Prometheus scrapes armada's exporters as, when "
        "metrics_password_file is set", check=name),
    Key("metrics_password_file", str, None, "File ON THE HOST holding the scrape password of this host's node "
        "exporter: it then answers only metrics_user with it (it gets a bcrypt hash made at its start, in its "
        "runtime folder); 0600, owned by node_exporter_service_user; never in a config, a command line or a log. "
        "The monitoring host holds the same password in its own file (monitoring_scrape_password_file)",
        nullable=True, check=secret_path, holds=SECRET, reader="node_exporter_service_user"),
)
