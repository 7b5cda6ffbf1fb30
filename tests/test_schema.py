"""Data validation: one clear error per problem, naming host, key and value."""

import textwrap

import pytest

from armada.schema import all_keys, defaults, validate_host_data
from conftest import ROOT, armada


def errors(data, host="h1"):
    return validate_host_data(host, {"model_id": "org/model", **data})


def only(data):
    found = errors(data)
    assert len(found) == 1, found
    return found[0]


def test_defaults_are_valid():
    assert errors({}) == []
    assert set(defaults()) == set(all_keys())


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("vllm_port", 70000, "1-65535"),
        ("vllm_port", "8000", "must be of type int"),
        ("vllm_port", True, "not a bool"),
        ("vllm_accelerator", "gpu", "one of"),
        ("vllm_gpu_memory_utilization", 1.5, "(0, 1]"),
        ("vllm_tensor_parallel_size", 0, ">= 1"),
        ("vllm_spec", "vllm>=>1", "not a pip requirement"),
        ("torch_version", "latest", "not a version"),
        ("torch_index_url", "download.pytorch.org/whl/cpu", "URL"),
        ("vllm_wheelhouse", "/nonexistent/wheelhouse", "neither a URL nor an existing folder"),
        ("model_path", "/nonexistent/model", "no such folder"),
        ("model_cache_dir", "relative/models", "absolute path"),
        ("model_id", "just-a-name", "org/name"),
    ],
)
def test_bad_values_name_host_key_and_value(key, value, message):
    data = {key: value}
    if key == "model_path":
        data["model_id"] = None
    error = only(data) if key != "model_path" else validate_host_data("h1", data)[0]
    assert (error.host, error.key, error.value) == ("h1", key, value)
    assert message in str(error) and "h1" in str(error) and key in str(error)


def test_unknown_key_suggests_the_close_one():
    error = only({"vllm_prot": 8001})
    assert "unknown data key" in str(error) and "did you mean 'vllm_port'" in str(error)
    assert "did you mean" not in str(only({"colour": "blue"}))


def test_pyinfra_keys_are_not_ours_to_refuse():
    assert errors({"ssh_user": "ubuntu", "ssh_port": 2222, "_sudo": True}) == []


def test_contradictions():
    assert only({"vllm_strategy": "wheel"}).key == "vllm_wheelhouse"
    assert only({"vllm_strategy": "source", "vllm_wheelhouse": "https://wheels.example/fleet"}).key == "vllm_wheelhouse"
    assert only({"vllm_spec": "vllm==0.32.0"}).key == "vllm_spec"  # vllm_version is 0.31.0
    assert validate_host_data("h1", {})[0].key == "model_id"


def test_model_path_needs_a_model_folder(tmp_path):
    assert "config.json" in str(validate_host_data("h1", {"model_path": str(tmp_path)})[0])
    (tmp_path / "config.json").write_text("{}")
    assert validate_host_data("h1", {"model_path": str(tmp_path)}) == []
    both = validate_host_data("h1", {"model_path": str(tmp_path), "model_id": "a/b"})
    assert "not both" in str(both[0])


def test_check_the_shipped_lab_inventory():
    result = armada("check", "inventories/lab.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("grace: 1 host(s)") for line in lines)
    assert any(line.startswith("graviton: 1 host(s)") for line in lines)


def test_check_reports_every_error_offline(tmp_path):
    # the addresses are never contacted: check must not connect
    inventory = tmp_path / "bad.py"
    inventory.write_text(textwrap.dedent("""
        grace = (["10.254.0.1"], {"model_id": "a/b", "vllm_port": 0, "vllm_prot": 1})
        graviton = (["10.254.0.2"], {"model_id": "a/b", "vllm_dtype": "fp8"})
    """))
    result = armada("check", str(inventory), cwd=str(tmp_path))
    assert result.returncode == 2
    assert "host '10.254.0.1': vllm_port = 0" in result.stderr
    assert "host '10.254.0.1': vllm_prot = 1: unknown data key; did you mean 'vllm_port'?" in result.stderr
    assert "host '10.254.0.2': vllm_dtype = 'fp8'" in result.stderr
    assert "3 error(s)" in result.stderr


def test_check_group_data_files_too(tmp_path):
    (tmp_path / "group_data").mkdir()
    (tmp_path / "group_data" / "all.py").write_text("model_id = 'a/b'\nvllm_kvcache_space_gib = '8'\n")
    (tmp_path / "inv.py").write_text("graviton = ['10.254.0.3']\n")
    result = armada("check", "inv.py", cwd=str(tmp_path))
    assert result.returncode == 2
    assert "vllm_kvcache_space_gib = '8': must be of type int or None, not str" in result.stderr


def test_check_unloadable_inventory(tmp_path):
    (tmp_path / "broken.py").write_text("grace = [\n")
    result = armada("check", str(tmp_path / "broken.py"))
    assert result.returncode == 2 and "cannot load inventory" in result.stderr
    assert armada("check", str(tmp_path / "missing.py")).returncode == 2




def test_readme_keys_table_is_current():
    from armada.cli import keys_table

    with open(f"{ROOT}/README.md") as handle:
        readme = handle.read()
    assert keys_table() in readme, "README's keys table is stale: paste `armada keys` between the keys markers"
