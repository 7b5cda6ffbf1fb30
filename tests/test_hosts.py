"""Every real host snapshot under tests/fixtures/hosts parses and profiles as expected.

Each folder holds real outputs (SOURCE.md says where from) and
expected.json, the parse and the decisions checked by hand against them.
"""

import json
import os

import pytest
from conftest import HOST_NAMES, armada, build_profile, host_dir

from armada.parsers.cpu import format_cpu_list
from armada.parsers.host import host_facts_from_outputs
from armada.snapshot import read_snapshot

PROFILE_KEYS = (
    "arch microarch physical_cores sockets numa_nodes cpu_features memory_gib accelerator gpu_count gpu_name "
    "tensor_parallel_size dtype omp_threads_bind kvcache_space_gib torch_index_url tcmalloc_path reasons"
).split()


def expected(name):
    with open(os.path.join(host_dir(name), "expected.json")) as handle:
        return json.load(handle)


@pytest.mark.parametrize("name", HOST_NAMES)
def test_every_fixture_names_its_source(name):
    with open(os.path.join(host_dir(name), "SOURCE.md")) as handle:
        text = handle.read()
    assert "http" in text or "armada snapshot" in text


@pytest.mark.parametrize("name", HOST_NAMES)
def test_parse_matches_expected(name):
    facts = host_facts_from_outputs(read_snapshot(host_dir(name)))
    want = expected(name)
    cpu = facts.cpu
    # a GPU-only snapshot (nvidia-smi alone, gb300) has no CPU: expected.json says "cpu": null
    got_cpu = None if cpu is None else {
        "arch": cpu.arch,
        "vendor": cpu.vendor,
        "model_name": cpu.model_name,
        "microarch": cpu.microarch,
        "logical_cpus": cpu.logical_cpus,
        "physical_cores": cpu.physical_cores,
        "threads_per_core": cpu.threads_per_core,
        "sockets": cpu.sockets,
        "numa_node_count": cpu.numa_node_count,
        "numa_nodes": [f"{node}:{format_cpu_list(cpus)}" for node, cpus in cpu.numa_cpus],
        "features": list(cpu.features),
    }
    assert got_cpu == want["cpu"]
    total = round(facts.memory.total_gib, 1) if facts.memory else None
    assert total == want["memory_total_gib"]
    if want["os"] is None:
        assert facts.os is None
    else:
        assert facts.os.id == want["os"]["id"]
        assert facts.os.version_id == want["os"]["version_id"]
        assert facts.os.codename == want["os"]["codename"]
        assert facts.os.package_manager == want["os"]["package_manager"]
    assert facts.gpu_count == want["gpus"]["count"]
    assert facts.gpu_name == want["gpus"]["name"]
    if facts.nvidia_smi:
        assert facts.nvidia_smi[0].driver_version == want["gpus"]["driver_version"]
        assert facts.nvidia_smi[0].memory_mib == want["gpus"]["memory_mib"]


@pytest.mark.parametrize("name", HOST_NAMES)
def test_profile_matches_expected(name):
    facts = host_facts_from_outputs(read_snapshot(host_dir(name)))
    profile = build_profile(name, facts, {}).to_json()
    for key, value in expected(name)["profile"].items():
        assert profile[key] == value, key


@pytest.mark.parametrize("name", HOST_NAMES)
def test_cli_profile_prints_json_with_every_key(name):
    result = armada("profile", host_dir(name))
    assert result.returncode == 0, result.stderr
    profile = json.loads(result.stdout)
    for key in PROFILE_KEYS:
        assert key in profile
    # every decision carries a one-line reason
    for field in ("accelerator", "tensor_parallel_size", "dtype", "omp_threads_bind", "kvcache_space_gib",
                  "torch_index_url", "tcmalloc_path", "vllm_strategy", "gpu_memory_utilization"):
        reason = profile["reasons"][field]
        assert reason and "\n" not in reason


def test_cli_profile_empty_folder_is_a_clear_error(tmp_path):
    result = armada("profile", str(tmp_path))
    assert result.returncode == 2
    assert str(tmp_path) in result.stderr and "no usable output" in result.stderr
    assert result.stdout == ""


def test_cli_profile_missing_folder(tmp_path):
    result = armada("profile", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_cli_profile_garbage_is_a_clear_error(tmp_path):
    (tmp_path / "meminfo.txt").write_text("this is not meminfo\n")
    result = armada("profile", str(tmp_path))
    assert result.returncode == 2
    assert "lscpu" in result.stderr


def test_cli_profile_data_override(tmp_path):
    result = armada("profile", host_dir("gb200"), "--data", "vllm_tensor_parallel_size=2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tensor_parallel_size"] == 2
    result = armada("profile", host_dir("gb200"), "--data", "vllm_tensor_parallel_size=8")
    assert result.returncode == 2
    assert "vllm_tensor_parallel_size = 8" in result.stderr and "4 GPU(s)" in result.stderr
