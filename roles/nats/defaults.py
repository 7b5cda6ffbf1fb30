"""Data keys of the nats role."""

import re

from armada.keys import (
    SECRET,
    Key,
    absolute_path,
    host_address,
    identifier,
    name,
    port,
    secret_path,
    tls_keys,
    url,
)


def _sha256(value):
    return None if re.fullmatch(r"[0-9a-f]{64}", value) else "must be a hex sha256 (64 characters)"


KEYS = (
    Key("nats_source", str, "distro", "'distro' (the OS package nats-server) or 'release' (nats_release_url + "
        "nats_release_sha256, a .tar.gz from NATS' releases or a mirror)", choices=("distro", "release")),
    Key("nats_release_url", str, None, "URL of a nats-server release .tar.gz for this host's architecture",
        nullable=True, check=url),
    Key("nats_release_sha256", str, None, "sha256 of nats_release_url", nullable=True, check=_sha256),
    Key("nats_listen", str, "127.0.0.1", "Address clients connect to; loopback unless other hosts use this one",
        check=host_address),
    Key("nats_port", int, 4222, "Client port", check=port),
    Key("nats_monitor_port", int, 8222, "HTTP monitoring port (/healthz, /jsz), bound to loopback", check=port),
    Key("nats_user", str, "armada", "Client user name when nats_password_file is set",
        check=name),
    Key("nats_service_user", str, "armada-nats", "System user nats-server runs as (its own: it alone owns the "
        "JetStream store, the password file and TLS key on the nats host)", check=identifier, user_of="nats"),
    Key("nats_password_file", str, None, "File ON THE HOST holding the nats client password (set it on the nats "
        "host and on every host using it): clients must then authenticate as nats_user; armada makes it 0600, "
        "owned by nats_service_user on the nats host and by root elsewhere (Dynamo gets it as a systemd "
        "credential); read at start, never in a config, a command line or a log",
        nullable=True, check=secret_path, holds=SECRET, reader="nats_service_user"),
    *tls_keys("nats", "nats-server", "(with nats_tls_key_file): every client must then speak TLS (tls:// "
              "URLs); it must name the address clients connect to", "(set it on every host using that nats)"),
    Key("nats_store_dir", str, "/var/lib/armada/nats", "JetStream store on persistent disk", check=absolute_path),
)
