"""One-shot cloud bootstrap on the lab: a fresh host (a never-deployed root
filesystem) runs what cloud-init would run from `armada cloud-init`'s
user-data (its write_files, then its runcmd, inside the host with no SSH
from outside), installs armada from a wheel of this checkout, deploys
itself with pyinfra @local and ends serving; the status file and the health
report say so. A second run changes nothing. The API key, a file the cloud
writes, never shows in the user-data, the log or the host's journal.
"""

import functools
import http.server
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from armada.cloudinit import user_data_parts
from armada.lab import assets
from armada.lab import hosts as lab
from conftest import ROOT
from armada.lab.scenarios import HEALTH_OP, changed_operations

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

HOST = lab.HOSTS_BY_NAME["armada-serve2"]
INVENTORY = os.path.join(ROOT, "tests", "lab", "cloudinit_inventory.py")
PORT = 8765
KEY_FILE = "/etc/armada/secrets/vllm-api-key"


@pytest.fixture(scope="module")
def armada_wheel_url(tmp_path_factory):
    """A wheel of this checkout, served on the lab bridge (what a release URL is to a real instance)."""
    folder = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), ROOT], check=True)
    wheel = next(name for name in os.listdir(folder) if name.endswith(".whl"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer((lab.GATEWAY, PORT), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{lab.GATEWAY}:{PORT}/{wheel}"
    server.shutdown()


def write_files(root, entries):
    """cloud-init's write_files, into the host's root filesystem."""
    for entry in entries:
        path = os.path.join(root, entry["path"].lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(entry["content"])
        os.chmod(path, int(entry["permissions"], 8))
        os.chown(path, 0, 0)


def bootstrap_run(runcmd):
    results = [lab.run_inside(HOST, [str(arg) for arg in command]) for command in runcmd]
    for command, result in zip(runcmd, results):
        assert result.returncode == 0, (command, result.stdout[-3000:], result.stderr[-3000:])
    return read(lab.rootfs_path(HOST), "/var/lib/armada-bootstrap/status.json")


def read(root, path):
    with open(os.path.join(root, path.lstrip("/"))) as handle:
        return json.load(handle) if path.endswith(".json") else handle.read()


@pytest.fixture(scope="module")
def instance(lab_hosts, armada_wheel_url):
    lab.reset(HOST)  # a new machine: nothing of armada on it
    assets.ensure_assets()
    rendered = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "armada"), "cloud-init", INVENTORY, "instance"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "ARMADA_TEST_INSTALL": armada_wheel_url},
    )
    assert rendered.returncode == 0, rendered.stderr
    root = lab.rootfs_path(HOST)
    # what the cloud provides: the secret file, and (lab only) the model and
    # torch wheelhouse folders the group's data names on the instance
    api_key = secrets.token_hex(16)
    write_files(root, [{"path": KEY_FILE, "content": api_key, "permissions": "0600"}])
    for folder in (assets.model_path(), assets.wheelhouse_path()):
        shutil.copytree(folder, os.path.join(root, folder.lstrip("/")), dirs_exist_ok=True)
    config = user_data_parts(rendered.stdout)
    write_files(root, config["write_files"])
    first = bootstrap_run(config["runcmd"])
    yield {"config": config, "text": rendered.stdout, "api_key": api_key, "first": first, "root": root}
    # left as the instance it became: this module runs last (conftest.LAB_ORDER), and a module that needs
    # armada-serve2 fresh resets it first (as this one did)


def test_first_boot_ends_serving(instance):
    status = instance["first"]
    assert status["result"] == "serving" and status["exit_code"] == 0 and status["health_ok"], status
    report = read(instance["root"], "/var/lib/armada-bootstrap/health.json")
    checks = {c["check"]: c for c in report["@local"]["checks"]}
    for name in ("armada-nats active", "etcd endpoint health", "vLLM chat completion generates",
                 "tcmalloc mapped in vLLM", "vLLM refuses a request without the API key"):
        assert checks[name]["ok"], checks.get(name)


def test_it_serves_to_the_outside_with_the_key_only(instance):
    url = f"http://{HOST.address}:8000/v1/chat/completions"
    body = json.dumps({"model": assets.MODEL_NAME, "messages": [{"role": "user", "content": "Hi"}],
                       "max_tokens": 5}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}),
                               timeout=60)
    assert refused.value.code == 401
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json",
                                                              "Authorization": f"Bearer {instance['api_key']}"})
    assert json.load(urllib.request.urlopen(request, timeout=120))["usage"]["completion_tokens"] > 0


def test_the_secret_is_nowhere_but_its_file(instance):
    key = instance["api_key"]
    assert key not in instance["text"]
    assert key not in read(instance["root"], "/var/log/armada-bootstrap.log")
    journal = lab.run_inside(HOST, ["journalctl", "--no-pager", "-o", "cat"])
    assert journal.returncode == 0 and key not in journal.stdout
    listing = lab.run_inside(HOST, ["stat", "-c", "%a %U", KEY_FILE])
    # root's alone: systemd hands it to vLLM's unit (LoadCredential), the service user cannot read it
    assert listing.stdout.split() == ["600", "root"]


def test_second_boot_changes_nothing(instance):
    log_before = len(read(instance["root"], "/var/log/armada-bootstrap.log"))
    entry_point = os.path.join(instance["root"], "opt/armada-bootstrap/venv/bin/armada")
    installed = os.stat(entry_point).st_mtime
    status = bootstrap_run([instance["config"]["runcmd"][-1]])
    assert status["result"] == "serving", status
    second = read(instance["root"], "/var/log/armada-bootstrap.log")[log_before:]
    assert os.stat(entry_point).st_mtime == installed  # armada is not reinstalled
    assert set(changed_operations(second)) <= {HEALTH_OP}, changed_operations(second)
