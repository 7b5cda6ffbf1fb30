"""An etcd cluster of three members, for real: three light lab hosts
(`armada lab up --light 3`: x86_64, no vLLM) form one cluster from the
inventory group etcd_cluster (ARMADA_LAB_ETCD_CLUSTER=1), peers over TLS
with each member's own certificate, auth set up once for the cluster. A
serving host writes and reads Dynamo's prefix through the members as
armada-client; one member stops, and the serving host keeps reading and
writing through the two left; the member comes back and catches up.

Runs on the session's deployed lab; boots the light hosts and removes them.
"""

import json
import os
import secrets
import shlex
import time

import pytest
from conftest import run_main_deploy

from armada.lab import hosts as lab
from armada.lab import tls
from armada.lab.layout import light_host

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
              pytest.mark.skipif(not os.environ.get("ARMADA_LAB_ETCD_CLUSTER_TEST"),
                                 reason="opt-in (three more hosts, about 3 min): set ARMADA_LAB_ETCD_CLUSTER_TEST=1")]

MEMBERS = [light_host(i) for i in (1, 2, 3)]
SERVE = lab.HOSTS_BY_NAME["armada-serve"]

# run on the serving host: log in as armada-client at each endpoint in turn, write KEY=VALUE (or only read
# with VALUE "-"), read it back; prints one JSON line {"endpoint": ..., "value": ...} or {"errors": [...]}
CLIENT = r"""
import base64, json, ssl, sys, urllib.request
endpoints, key, value, user, password_file, ca = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4], \
    sys.argv[5], sys.argv[6]
context = ssl.create_default_context(cafile=ca)
password = open(password_file).read().strip()
def post(url, body, token=None):
    headers = {"Authorization": token} if token else {}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    return json.load(urllib.request.urlopen(request, timeout=5, context=context))
b64 = lambda text: base64.b64encode(text.encode()).decode()
errors = []
for endpoint in endpoints:
    try:
        token = post(endpoint + "/v3/auth/authenticate", {"name": user, "password": password})["token"]
        if value != "-":
            post(endpoint + "/v3/kv/put", {"key": b64(key), "value": b64(value)}, token)
        kvs = post(endpoint + "/v3/kv/range", {"key": b64(key)}, token).get("kvs", [])
        print(json.dumps({"endpoint": endpoint, "value": base64.b64decode(kvs[0]["value"]).decode() if kvs else None}))
        break
    except Exception as exc:
        errors.append(f"{endpoint}: {exc}")
else:
    print(json.dumps({"errors": errors}))
"""


def endpoints(members):
    return ",".join(f"https://{m.address}:2379" for m in members)


def client(serve, members, key, value="-"):
    """What the serving host gets through ``members`` (the first that answers)."""
    args = [endpoints(members), key, value, "armada-client", lab.host_secret_path("etcd-client-password"),
            tls.CA_FILE]
    out = serve.check_output(f"python3 -c {shlex.quote(CLIENT)} {' '.join(shlex.quote(a) for a in args)}")
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def light_hosts(deployed_lab):
    lab.up(light=3)
    try:
        yield MEMBERS
    finally:
        lab.up(light=0)


def test_three_members_form_one_cluster_that_survives_losing_one(light_hosts, testinfra_host, tmp_path):
    env = {**os.environ, "ARMADA_LAB_ETCD_CLUSTER": "1"}
    result, output = run_main_deploy(tmp_path / "cluster.json", "--limit", "etcd_cluster", env=env)
    assert result.returncode == 0, output[-6000:]
    report = json.loads((tmp_path / "cluster.json").read_text())
    assert set(report) == {m.name for m in MEMBERS} and all(entry["ok"] for entry in report.values()), report
    first = testinfra_host(MEMBERS[0])
    # one cluster of three started members, peers over https
    root = lab.lab_secret("etcd-password")
    listing = first.check_output(
        "python3 -c " + shlex.quote(
            "import json, ssl, urllib.request as u\n"
            f"c = ssl.create_default_context(cafile={tls.CA_FILE!r})\n"
            "def post(p, b, t=None):\n"
            "    r = u.Request('https://127.0.0.1:2379' + p, data=json.dumps(b).encode(), method='POST',"
            " headers={'Authorization': t} if t else {})\n"
            "    return json.load(u.urlopen(r, timeout=5, context=c))\n"
            f"t = post('/v3/auth/authenticate', {{'name': 'root', 'password': {root!r}}})['token']\n"
            "print(json.dumps(post('/v3/cluster/member/list', {}, t)))"))
    members = json.loads(listing)["members"]
    assert sorted(m["name"] for m in members) == [m.name for m in MEMBERS]
    assert all(url.startswith("https://") for m in members for url in m["peerURLs"])

    serve = testinfra_host(SERVE)
    value = secrets.token_hex(8)
    wrote = client(serve, MEMBERS, "v1/armada-cluster-test", value)
    assert wrote.get("value") == value, wrote
    # Dynamo's user stays in its prefix on the cluster too
    assert "errors" in client(serve, MEMBERS, "outside-v1", "x")

    # one member down: the serving host keeps reading and writing through the others
    stopped = testinfra_host(MEMBERS[0])
    stopped.check_output("systemctl stop armada-etcd")
    try:
        again = secrets.token_hex(8)
        through = client(serve, MEMBERS, "v1/armada-cluster-test", again)
        assert through.get("value") == again and through["endpoint"] != f"https://{MEMBERS[0].address}:2379", through
        assert client(serve, MEMBERS[2:], "v1/armada-cluster-test").get("value") == again
    finally:
        stopped.check_output("systemctl start armada-etcd")
    # back: it caught up with what was written while it was down
    for _ in range(30):
        back = client(serve, MEMBERS[:1], "v1/armada-cluster-test")
        if back.get("value") == again:
            break
        time.sleep(1)
    assert back.get("value") == again, back
