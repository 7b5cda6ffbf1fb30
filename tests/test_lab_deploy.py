"""The main job on the local lab: deploys/llm.py takes three real Debian hosts
(aarch64 control plane, two x86_64 serving nodes) to a serving, health-checked
vLLM; a second run changes nothing (a changed port restarting only vLLM is
tests/test_lab_faults.py's killed deploy, which changes the port anyway).

Verified with pytest-testinfra over SSH and with real requests to nats, etcd
and vLLM from this machine (to the lab's own addresses only).
"""

import base64
import json
import os
import re
import shlex
import socket
import urllib.error
import urllib.request

import pytest

import checks
from armada.lab import hosts as lab
from armada.lab.assets import MODEL_NAME
from armada.lab.client import completion_tokens
from armada.lab.scenarios import HEALTH_OP, changed_operations
from conftest import run_main_deploy

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

CP = lab.HOSTS_BY_NAME["armada-cp"]
SERVE = lab.HOSTS_BY_NAME["armada-serve"]
SERVE2 = lab.HOSTS_BY_NAME["armada-serve2"]


deploy = run_main_deploy


@pytest.fixture(scope="module")
def first_run(deployed_lab):
    """The session's first converge (conftest.deployed_lab): this module is where it is tested."""
    return deployed_lab


def test_first_run_ends_with_every_health_check_green(first_run):
    report, output = first_run
    assert set(report) == {CP.name, SERVE.name, SERVE2.name}
    for host, entry in report.items():
        assert entry["ok"], (host, [c for c in entry["checks"] if not c["ok"]])
    checks = {c["check"] for c in report[SERVE.name]["checks"]}
    assert {"vLLM chat completion generates", "tcmalloc mapped in vLLM", "venv torch is the profile's build"} <= checks
    # the control plane asks for passwords (the lab's data): the serving host logs in to both
    assert any(c.startswith("authenticates to etcd") for c in checks), checks
    assert any(c.startswith("authenticates to nats") for c in checks), checks
    assert {"nats JetStream enabled", "etcd endpoint health", "nats refuses a client without the password",
            "etcd refuses a request without credentials"} <= {c["check"] for c in report[CP.name]["checks"]}
    assert "--> Health of armada-serve" in output


SECRETS = {name: lab.lab_secret(name) for name in lab.LAB_SECRETS}
# who owns each lab secret file after the deploy (least privilege); every other one: root
OWNERS = {(CP.name, "nats-password"): "armada-nats"}


def test_secrets_stay_out_of_output_configs_journals_and_argv(first_run, testinfra_host):
    _, output = first_run
    for name, value in SECRETS.items():
        assert value not in output, name
    for lab_host in (CP, SERVE, SERVE2):
        host = testinfra_host(lab_host)
        # configs: the control plane's, the units, and each install's own env file and command
        # (<armada_root>/vllm/<install>/armada-vllm.env, armada-serve), where a leaked password would land
        configs = host.check_output("cat /etc/armada/*.env /etc/armada/*.conf /etc/systemd/system/armada-*.service "
                                    "/opt/armada/vllm/*/armada-* 2>/dev/null || true")
        if lab_host is not CP:  # the serving hosts' per-install files were read
            assert "(vllm_service role), from the host's profile" in configs, lab_host.name  # armada-vllm.env
            assert "vllm.entrypoints.openai.api_server" in configs, lab_host.name  # armada-serve
        for name, value in SECRETS.items():
            secret = host.file(lab.host_secret_path(name))
            # 0600 for the one service that reads it itself (nats' password on armada-cp); root's
            # everywhere else (systemd hands them to vLLM's and Dynamo's units as credentials)
            owner = OWNERS.get((lab_host.name, name), "root")
            assert (secret.mode, secret.user, secret.group) == (0o600, owner, owner), (lab_host.name, name)
            assert value not in host.check_output("journalctl --no-pager -o cat -b"), (lab_host.name, name)
            assert value not in host.check_output("ps -eo args"), (lab_host.name, name)
            assert value not in configs, (lab_host.name, name)
    cp = testinfra_host(CP)
    assert cp.file("/etc/armada/nats.conf").contains("password: \\$ARMADA_NATS_PASSWORD")


# -- least privilege and closed by default, seen from the hosts (issue 16) ----


def test_each_service_runs_as_its_own_user(first_run):
    for lab_host, unit, user in ((CP, "armada-nats", "armada-nats"), (CP, "armada-etcd", "armada-etcd"),
                                 (SERVE, "armada-vllm", "armada"), (SERVE2, "armada-vllm", "armada")):
        status, out, _ = lab.ssh_exec(lab_host, f"ps -o user= -p $(systemctl show -p MainPID --value {unit})")
        assert status == 0 and out.strip() == user, (lab_host.name, unit, out)


def test_the_serving_user_reads_no_secret_file(first_run):
    """vLLM's user (and Dynamo's) cannot read nats', etcd's or even its own API
    key's file: systemd hands the key to the unit (LoadCredential)."""
    for lab_host in (CP, SERVE, SERVE2):
        for name in SECRETS:
            status, _, err = lab.ssh_exec(lab_host, f"runuser -u armada -- cat {lab.host_secret_path(name)}")
            assert status != 0 and "Permission denied" in err, (lab_host.name, name, err)
    # nor can nats' user read etcd's root password, nor etcd's user nats' password
    for user, name in (("armada-nats", "etcd-password"), ("armada-etcd", "nats-password")):
        status, _, err = lab.ssh_exec(CP, f"runuser -u {user} -- cat {lab.host_secret_path(name)}")
        assert status != 0 and "Permission denied" in err, (user, name, err)
    # nor write another service's data (the data root is root's; etcd's and JetStream's folders their own)
    status, _, err = lab.ssh_exec(CP, "runuser -u armada -- touch /var/lib/armada/etcd/x /var/lib/armada/nats/x "
                                      "/var/lib/armada/x")
    assert status != 0 and err.count("Permission denied") == 3, err


def test_nats_and_etcd_refuse_anonymous_clients_from_another_lab_host(first_run):
    status, out, _ = lab.ssh_exec(SERVE, f"curl -sS --noproxy '*' -X POST -d '{{\"key\":\"YQ==\"}}' "
                                         f"http://{CP.address}:2379/v3/kv/range")
    assert "user name is empty" in out, out
    nats = (f"exec 3<>/dev/tcp/{CP.address}/4222; printf 'CONNECT {{\"verbose\":false}}\\r\\nPING\\r\\n' >&3; "
            "timeout 5 head -c 600 <&3; true")
    status, out, _ = lab.ssh_exec(SERVE, f"bash -c {shlex.quote(nats)}")
    assert "Authorization Violation" in out, out


OPENAI_CLIENT = """
import os, openai
client = openai.OpenAI(base_url=os.environ["BASE"], api_key=os.environ.get("KEY") or "wrong", max_retries=0)
try:
    reply = client.chat.completions.create(model=os.environ["MODEL"], max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
    print("tokens", reply.usage.completion_tokens)
except openai.AuthenticationError as error:
    print("status", error.status_code)
"""


def test_the_openai_client_needs_the_api_key(first_run):
    """OpenAI's own Python client (in the serving venv, vLLM requires it) on
    armada-serve2 against armada-serve's vLLM: 401 without the key, a
    completion with it (read from the file on the host, never on a command line)."""
    run = (f"BASE=http://{SERVE.address}:8000/v1 MODEL={MODEL_NAME} /opt/armada/vllm/current/bin/python -c "
           f"{shlex.quote(OPENAI_CLIENT)}")
    status, out, err = lab.ssh_exec(SERVE2, run, timeout=180)
    assert status == 0 and out.strip() == "status 401", (out, err[-2000:])
    keyed = f"KEY=$(cat {lab.host_secret_path('vllm-api-key')}) {run}"
    status, out, err = lab.ssh_exec(SERVE2, f"bash -c {shlex.quote(keyed)}", timeout=180)
    assert status == 0 and out.startswith("tokens ") and int(out.split()[1]) > 0, (out, err[-2000:])


UNITS = ((CP, "armada-nats"), (CP, "armada-etcd"), (SERVE, "armada-vllm"))


def test_systemd_rates_every_unit_ok(first_run):
    """systemd-analyze security: each of armada's units at 'OK' (<= 4.0) or better."""
    scores = {}
    for lab_host, unit in UNITS:
        status, out, _ = lab.ssh_exec(lab_host, f"systemd-analyze security --no-pager {unit}.service")
        match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", out)
        assert match, out[-500:]
        scores[unit] = (float(match.group(1)), match.group(2))
    print("systemd-analyze security:", scores)
    assert all(score <= 4.0 for score, _ in scores.values()), scores


def test_second_run_changes_nothing(first_run, tmp_path):
    result, output = deploy(tmp_path / "second.json")
    assert result.returncode == 0, output[-8000:]
    changed = changed_operations(output)
    # the health checks read (they run every time); nothing else may change
    assert set(changed) <= {HEALTH_OP}, changed


def test_testinfra_control_plane(first_run, testinfra_host):
    cp = testinfra_host(CP)
    assert cp.system_info.arch == "aarch64"
    checks.base(cp)
    checks.tcmalloc(cp)
    checks.nats(cp, "0.0.0.0")
    checks.etcd(cp, "0.0.0.0")


@pytest.mark.parametrize("lab_host", [SERVE, SERVE2], ids=lambda h: h.name)
def test_testinfra_serving_node(first_run, testinfra_host, lab_host):
    serve = testinfra_host(lab_host)
    assert serve.system_info.arch == "x86_64"
    for role in (checks.base, checks.tcmalloc, checks.vllm, checks.model):
        role(serve)
    checks.vllm_service(serve, CP.address)
    assert serve.package("libnuma-dev").is_installed and serve.package("python3-venv").is_installed


def nats_connect(password=None) -> bytes:
    """nats' reply to CONNECT (+ PING) from this machine, as user armada with ``password``."""
    with socket.create_connection((CP.address, 4222), timeout=10) as conn:
        info = conn.recv(4096)
        assert info.startswith(b"INFO ") and json.loads(info[5:].split(b"\r\n")[0])["auth_required"] is True
        credentials = {"user": "armada", "pass": password} if password else {}
        conn.sendall(b"CONNECT " + json.dumps({"verbose": False, **credentials}).encode() + b"\r\nPING\r\n")
        return conn.recv(200)


def etcd(path, body, password=SECRETS["etcd-password"]):
    """A v3 JSON gateway call to the control plane's etcd, as root (or anonymous when password is None)."""
    def post(path, body, headers):
        request = urllib.request.Request(f"http://{CP.address}:2379{path}", data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
        return json.load(urllib.request.urlopen(request, timeout=10))
    headers = {}
    if password:
        headers["Authorization"] = post("/v3/auth/authenticate", {"name": "root", "password": password}, {})["token"]
    return post(path, body, headers)


def test_real_requests_from_outside(first_run):
    # nats: a client with the password gets in, one without is refused
    assert nats_connect(SECRETS["nats-password"]).startswith(b"PONG")
    assert b"Authorization Violation" in nats_connect()
    assert b"Authorization Violation" in nats_connect("wrong")
    # etcd: anonymous requests refused; root's put and get through the v3 JSON gateway
    # a value of this run's own: what is read back is what this test wrote, not a key left by an earlier session
    key, value = base64.b64encode(b"armada-test").decode(), base64.b64encode(os.urandom(12)).decode()
    with pytest.raises(urllib.error.HTTPError):
        etcd("/v3/kv/range", {"key": key}, password=None)
    etcd("/v3/kv/put", {"key": key, "value": value})
    assert etcd("/v3/kv/range", {"key": key})["kvs"][0]["value"] == value
    # vLLM: a real completion with the API key; without it, or with a wrong one, 401
    assert completion_tokens(SERVE.address, 8000) > 0
    for key in (None, "wrong"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            completion_tokens(SERVE.address, 8000, api_key=key)
        assert refused.value.code == 401
