"""`armada cloud-init`: the user-data it prints, checked by cloud-init's own
schema, read back, and refused with a clear error on bad group data."""

import json
import os
import shutil
import subprocess
import textwrap

import pytest

from armada.cloudinit import CloudInitError, render, user_data_parts
from armada.inventory import load_inventory
from conftest import ROOT, armada

INVENTORY = os.path.join(ROOT, "tests", "lab", "cloudinit_inventory.py")


def files_of(text):
    return {f["path"]: f for f in user_data_parts(text)["write_files"]}


@pytest.fixture(scope="module")
def rendered():
    result = armada("cloud-init", INVENTORY, "instance")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cloud_init_schema_accepts_it(rendered, tmp_path):
    assert rendered.startswith("#cloud-config\n")
    exe = shutil.which("cloud-init")
    assert exe, "cloud-init is not installed (apt-get install cloud-init; the README's install command does)"
    path = tmp_path / "user-data"
    path.write_text(rendered)
    result = subprocess.run([exe, "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and "Valid" in result.stdout, result.stdout + result.stderr


def test_what_the_instance_gets(rendered):
    config = user_data_parts(rendered)
    files = files_of(rendered)
    data = json.loads(files["/etc/armada/bootstrap/data.json"]["content"])
    assert data["armada_roles"][-1] == "vllm_service" and data["model_name"] == "tiny"
    assert "armada_health_report" not in data  # the bootstrap sets it
    # the egress CA travels inside the user-data and the data points at it
    assert all(p.startswith("/usr/local/share/ca-certificates/armada/") for p in data["armada_ca_certs"])
    assert all(p in files and "BEGIN CERTIFICATE" in files[p]["content"] for p in data["armada_ca_certs"])
    env = files["/etc/armada/bootstrap/bootstrap.env"]
    assert env["permissions"] == "0600" and "ARMADA_INSTALL='armada==0.1.0'" in env["content"]
    assert "https_proxy='http://10.213.0.1:8888'" in env["content"]
    assert "ARMADA_SECRET_FILES='/etc/armada/secrets/vllm-api-key'" in env["content"]
    script = files["/usr/local/sbin/armada-bootstrap"]
    assert script["permissions"] == "0755"
    with open(os.path.join(ROOT, "files", "armada-bootstrap.sh")) as handle:
        assert script["content"] == handle.read()
    assert subprocess.run(["bash", "-n"], input=script["content"], text=True).returncode == 0
    compile(files["/etc/armada/bootstrap/inventory.py"]["content"], "inventory.py", "exec")
    assert config["runcmd"][-1] == ["/usr/local/sbin/armada-bootstrap"]
    assert ["systemctl", "enable", "armada-bootstrap.service"] in config["runcmd"]  # again at every boot
    assert config["apt"]["http_proxy"] == "http://10.213.0.1:8888" and "python3-venv" in config["packages"]
    # secrets are named, never carried
    assert "Secret files the cloud must write before boot: /etc/armada/secrets/vllm-api-key" in rendered
    assert "/etc/armada/secrets/vllm-api-key" not in files


def test_a_baked_secret_is_0600_and_said_loudly(tmp_path):
    result = subprocess.run(
        [shutil.which("armada", path=os.path.dirname(os.sys.executable)), "cloud-init", INVENTORY, "instance",
         "--bake-secret", "vllm_api_key_file=TEST_KEY"],
        capture_output=True, text=True, env={**os.environ, "TEST_KEY": "s3cret-value"}, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "IN CLEAR" in result.stderr and "TEST_KEY" in result.stderr and "s3cret-value" not in result.stderr
    secret = files_of(result.stdout)["/etc/armada/secrets/vllm-api-key"]
    assert secret["permissions"] == "0600" and secret["content"] == "s3cret-value"
    assert "WARNING: this user-data holds secrets in clear" in result.stdout


BAD_GROUPS = {
    "no_install": ({"armada_install": None}, "armada_install", None),
    "other_host": ({"armada_control_plane": "cp-1"}, "armada_control_plane", "cp-1"),
    "relative_model": ({"model_path": "models/tiny"}, "model_path", "models/tiny"),
    "two_models": ({"model_id": "org/model"}, "model_path", None),
    "bad_port": ({"vllm_port": 70000}, "vllm_port", 70000),
    "typo": ({"vllm_prot": 8000}, "vllm_prot", 8000),
}


@pytest.mark.parametrize("case", sorted(BAD_GROUPS))
def test_bad_group_data_is_refused_naming_group_and_key(case, tmp_path):
    change, key, value = BAD_GROUPS[case]
    inventory = tmp_path / "inv.py"
    inventory.write_text(textwrap.dedent(f"""
        import runpy
        _base = runpy.run_path({INVENTORY!r})["instance"]
        instance = (_base[0], {{**_base[1], **{change!r}}})
    """))
    result = armada("cloud-init", str(inventory), "instance")
    assert result.returncode == 2 and result.stdout == ""
    assert "group instance" in result.stderr and key in result.stderr, result.stderr
    if value is not None:
        assert repr(value) in result.stderr


def test_unknown_group_and_bad_bake_are_refused():
    inventory = load_inventory(INVENTORY)
    with pytest.raises(CloudInitError, match="no group 'gpu'"):
        render(inventory, INVENTORY, "gpu")
    with pytest.raises(CloudInitError, match="UNSET_VARIABLE is unset"):
        render(inventory, INVENTORY, "instance", {"vllm_api_key_file": "UNSET_VARIABLE"}, environ={})
    with pytest.raises(CloudInitError, match="--bake-secret takes one of"):
        render(inventory, INVENTORY, "instance", {"armada_proxy": "X"}, environ={"X": "1"})


def test_installed_armada_finds_its_deploys():
    result = armada("path", "deploys/llm.py")
    assert result.returncode == 0 and result.stdout.strip() == os.path.join(ROOT, "deploys", "llm.py")
    assert armada("path", "deploys/nope.py").returncode == 2
