"""The lab's TLS material: one CA, and a server certificate for the control
plane host (nats and etcd), made once per lab with the openssl command and
kept in the lab dir, as an operator's PKI would hand them over.

The certificate names what clients dial: the host's lab address, its name,
127.0.0.1 and localhost (etcd's own gateway and armada's checks on the host
use loopback).
"""

from __future__ import annotations

import os
import subprocess
import threading

from armada.lab import layout as lab

TLS_HOST = "armada-cp"
# where the lab's hosts hold them, beside the lab's other secrets
CA_FILE = f"{lab.HOST_SECRETS_DIR}/tls-ca.crt"
CERT_FILE = f"{lab.HOST_SECRETS_DIR}/{TLS_HOST}.crt"
# one copy of the key per service: each is its own user's alone (least privilege)
NATS_KEY_FILE = f"{lab.HOST_SECRETS_DIR}/{TLS_HOST}-nats.key"
ETCD_KEY_FILE = f"{lab.HOST_SECRETS_DIR}/{TLS_HOST}-etcd.key"
# client certificates for an etcd that asks for them (ARMADA_LAB_TLS=certs), on every host:
# armada's own (no CommonName: etcd's JSON gateway refuses one with a CN while auth is on)
# and Dynamo's (CommonName armada-client: the etcd user it logs in as)
ARMADA_CLIENT_CERT = f"{lab.HOST_SECRETS_DIR}/etcd-client.crt"
ARMADA_CLIENT_KEY = f"{lab.HOST_SECRETS_DIR}/etcd-client.key"
DYNAMO_CLIENT_CERT = f"{lab.HOST_SECRETS_DIR}/dynamo-etcd.crt"
DYNAMO_CLIENT_KEY = f"{lab.HOST_SECRETS_DIR}/dynamo-etcd.key"
CLIENT_CERTS = {  # file stem in the lab's folder: (subject, certificate path, key path on the hosts)
    "armada-etcd-client": ("/O=armada lab", ARMADA_CLIENT_CERT, ARMADA_CLIENT_KEY),
    "dynamo-etcd-client": ("/CN=armada-client", DYNAMO_CLIENT_CERT, DYNAMO_CLIENT_KEY),
}


def _openssl(*args: str, cwd: str) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise lab.LabError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


def make_tls(folder: str, name: str, addresses: list[str], dns: list[str], subject: str | None = None) -> dict[str, str]:
    """The lab's CA (made once) and a certificate for ``name`` signed by it, in ``folder`` (each kept when
    already there): a server's (and client's) valid for ``addresses`` (IPs) and ``dns`` names, or with
    neither a client's only, its subject ``subject`` (default /CN=<name>). Returns the paths: ca, cert, key."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    paths = {"ca": os.path.join(folder, "ca.crt"), "cert": os.path.join(folder, f"{name}.crt"),
             "key": os.path.join(folder, f"{name}.key")}
    if not (os.path.exists(paths["ca"]) and os.path.exists(os.path.join(folder, "ca.key"))):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                 "-days", "3650", "-subj", "/CN=armada lab CA", cwd=folder)
        os.chmod(os.path.join(folder, "ca.key"), 0o600)
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    names = [f"IP:{a}" for a in addresses] + [f"DNS:{d}" for d in dns]
    with open(os.path.join(folder, f"{name}.ext"), "w", encoding="utf-8") as handle:
        handle.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n")
        if names:
            handle.write(f"extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={','.join(names)}\n")
        else:
            handle.write("extendedKeyUsage=clientAuth\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject or f"/CN={name}", cwd=folder)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "3650", "-extfile", f"{name}.ext", cwd=folder)
    for path in paths.values():
        os.chmod(path, 0o600)
    return paths


_making = threading.Lock()  # the lab prepares its hosts in threads


def lab_tls(name: str = TLS_HOST) -> dict[str, str]:
    """The CA, and lab host ``name``'s certificate (its address, its name, loopback) and key."""
    host = lab.lab_host(name)
    with _making:
        return make_tls(os.path.join(lab.lab_dir(), "tls"), name, [host.address, "127.0.0.1"], [name, "localhost"])


def client_tls(stem: str) -> dict[str, str]:
    """One of the lab's client certificates (CLIENT_CERTS), made once: the CA, cert, key paths."""
    with _making:
        return make_tls(os.path.join(lab.lab_dir(), "tls"), stem, [], [], subject=CLIENT_CERTS[stem][0])


def cert_file(name: str) -> str:
    """Where lab host ``name`` holds its own certificate."""
    return f"{lab.HOST_SECRETS_DIR}/{name}.crt"


def etcd_key_file(name: str) -> str:
    """Where lab host ``name`` holds its etcd's copy of its key."""
    return f"{lab.HOST_SECRETS_DIR}/{name}-etcd.key"


def host_files(name: str) -> dict[str, tuple[str, int]]:
    """What lab host ``name`` holds: ``{path on the host: (text, mode)}``;
    the CA and the client certificates on every host, the certificate and a copy of its key per service
    (root's 0600 until the base role hands each to its service's user) on the
    control plane."""
    paths = lab_tls()

    def read(key: str, made: dict[str, str] = paths) -> str:
        with open(made[key], encoding="utf-8") as handle:
            return handle.read()

    files = {CA_FILE: (read("ca"), 0o644)}
    for stem, (_, cert_path, key_path) in CLIENT_CERTS.items():
        made = client_tls(stem)
        files[cert_path] = (read("cert", made), 0o644)
        files[key_path] = (read("key", made), 0o600)
    if name == TLS_HOST:
        files[CERT_FILE] = (read("cert"), 0o644)
        files[NATS_KEY_FILE] = (read("key"), 0o600)
        files[ETCD_KEY_FILE] = (read("key"), 0o600)
    elif name.startswith("armada-light"):
        # a light host may be an etcd cluster's member: its own certificate, its etcd's key
        own = lab_tls(name)
        files[cert_file(name)] = (read("cert", own), 0o644)
        files[etcd_key_file(name)] = (read("key", own), 0o600)
    return files
