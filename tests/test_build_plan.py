"""The source strategy's decisions: build keys, one builder per key, the
compiler check, compile jobs and finding the wheel in the wheelhouse."""

import os

import pytest
from conftest import build_profile, host_dir

from armada.parsers.host import host_facts_from_outputs
from armada.schema import with_defaults
from armada.snapshot import read_snapshot
from roles.vllm.build import (
    BuildError,
    build_jobs,
    build_key,
    compiler_problem,
    elect_builders,
    wheel_for,
)


def facts(name):
    return host_facts_from_outputs(read_snapshot(host_dir(name)))


def key_of(name, **data):
    data = with_defaults({"vllm_strategy": "source", **data})
    f = facts(name)
    profile = build_profile(name, f, data)
    return build_key(profile, f.cpu.arch, f"{f.os.id}{f.os.version_id}" if f.os else "unknown", data)


def test_one_key_for_a_fleet_of_one_kind_and_a_new_key_for_each_difference():
    base = key_of("graviton3")
    assert base.startswith("aarch64-") and "-v0.31.0-torch2.13.0" in base and "-cpu-" in base
    assert key_of("graviton3") == base
    assert key_of("graviton3", vllm_git_commit="0123abcd") != base
    assert key_of("graviton3", torch_version="2.12.0") != base
    assert key_of("graviton3", vllm_build_env={"ACL_ROOT_DIR": "/opt/acl"}) != base
    # an x86_64 host never shares an aarch64 build
    assert key_of("x86-lab-vm").startswith("x86_64-")


def test_the_first_host_needing_a_key_builds_it_once():
    needs = [("g1", "arm"), ("g2", "arm"), ("x1", "x86"), ("g3", "arm"), ("x2", "x86")]
    assert elect_builders(needs, built=[]) == {"arm": "g1", "x86": "x1"}


def test_a_wheel_already_in_the_wheelhouse_is_never_rebuilt():
    needs = [("g1", "arm"), ("x1", "x86")]
    assert elect_builders(needs, built=["arm"]) == {"x86": "x1"}
    assert elect_builders([], built=[]) == {}


def test_compiler_check_names_host_version_and_minimum():
    assert compiler_problem("13.3.0", "12.3", "b1") is None
    assert compiler_problem("12.3", "12.3", "b1") is None
    problem = compiler_problem("12.2.0", "12.3", "builder-1")
    assert "builder-1" in problem and "12.2.0" in problem and "12.3" in problem and "vllm_build_min_gcc" in problem
    assert "no g++" in compiler_problem(None, "12.3", "b1")


@pytest.mark.parametrize("cores, gib, wanted, jobs", [(64, 256, None, 64), (64, 16, None, 8), (2, 24, None, 2),
                                                       (4, 1, None, 1), (64, 256, 3, 3)])
def test_build_jobs_bounded_by_cores_and_memory(cores, gib, wanted, jobs):
    assert build_jobs(cores, gib * 1024**3, wanted) == jobs


def test_wheel_for_matches_name_and_version_with_local_labels(tmp_path):
    assert wheel_for(str(tmp_path), "vllm==0.31.0") is None
    (tmp_path / "vllm-0.31.0+cpu-cp311-cp311-linux_aarch64.whl").write_bytes(b"")
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-linux_aarch64.whl").write_bytes(b"")
    assert os.path.basename(wheel_for(str(tmp_path), "vllm==0.31.0")).startswith("vllm-0.31.0+cpu")
    assert wheel_for(str(tmp_path), "vllm==0.32.0") is None
    (tmp_path / "vllm-0.31.0+cpu2-cp311-cp311-linux_aarch64.whl").write_bytes(b"")
    with pytest.raises(BuildError, match="more than one wheel"):
        wheel_for(str(tmp_path), "vllm==0.31.0")
