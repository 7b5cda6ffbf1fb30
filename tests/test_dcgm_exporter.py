"""The dcgm_exporter role's decisions (pure), on real GPU and CPU-only snapshots and a real dcgm-exporter
answer: which DCGM packages, how many GPUs the GPU-missing alert expects, which hosts are refused (by host
and key, before any change)."""

import pytest
from conftest import fixture_text
from roleplan import profile_of

from armada.schema import with_defaults
from roles.dcgm_exporter import checks, dcgm_plan
from roles.dcgm_exporter.health import gpus_reported

GPU_HOST = {"armada_roles": ["base", "nvidia", "node_exporter", "dcgm_exporter"]}


@pytest.mark.parametrize("snapshot, gpus", [("gh200", 1), ("gb200", 4), ("gb300", 4), ("x86-h100", 8)])
def test_the_alert_expects_the_gpus_on_pci(snapshot, gpus):
    data = with_defaults(GPU_HOST)
    plan = dcgm_plan(profile_of(snapshot, data), data)
    assert plan.gpus == gpus and plan.packages == ("datacenter-gpu-manager-4-cuda13", "datacenter-gpu-manager-exporter")
    assert f"{gpus} GPU(s) on PCI" in plan.reasons[1]


def test_dcgm_follows_the_driver_branch_or_data():
    for branch, cuda in (("570", "12"), ("580", "13"), ("590", "13")):
        data = with_defaults({**GPU_HOST, "nvidia_driver_branch": branch})
        assert dcgm_plan(profile_of("gh200", data), data).packages[0] == f"datacenter-gpu-manager-4-cuda{cuda}"
    data = with_defaults({**GPU_HOST, "dcgm_cuda": "12"})
    assert dcgm_plan(profile_of("gh200", data), data).reasons[0] == "DCGM 4 for CUDA 12: data asks"


def test_gpus_reported_by_uuid_from_a_real_answer():
    # NVIDIA/dcgm-exporter PR #736: one GPU_TEMP line (an RTX 2000 Ada); the A30's MIG line is a power sample
    assert gpus_reported(fixture_text("metrics", "dcgm-exporter-4.8-pr736.txt")) == {
        "GPU-fc60126e-514d-3522-2828-c5daa8e99d85"}
    assert gpus_reported("node_load1 0.1\n") == set()


def test_what_the_role_needs_is_named_by_host_and_key():
    alone = list(checks("gh1", with_defaults({"armada_roles": ["base", "dcgm_exporter"]})))
    assert [(e.host, e.key) for e in alone] == [("gh1", "armada_roles"), ("gh1", "armada_roles")]
    assert "needs nvidia" in str(alone[0]) and "needs node_exporter" in str(alone[1])
    opened = list(checks("gh1", with_defaults({**GPU_HOST, "dcgm_exporter_listen": "0.0.0.0"})))
    assert [(e.host, e.key) for e in opened] == [("gh1", "dcgm_exporter_listen")]
    guarded = with_defaults({**GPU_HOST, "dcgm_exporter_listen": "0.0.0.0", "metrics_password_file": "/etc/s/m"})
    assert list(checks("gh1", guarded)) == []


@pytest.mark.parametrize("snapshot, refused", [("graviton3", True), ("ampere-altra", True), ("gh200", False)])
def test_a_host_without_nvidia_gpus_is_refused_before_any_change(snapshot, refused):
    from types import SimpleNamespace

    from roles.dcgm_exporter import preflight
    run = SimpleNamespace(profile=profile_of(snapshot, with_defaults(GPU_HOST)), host=SimpleNamespace(name="h1"))
    errors = list(preflight(run))
    assert bool(errors) == refused
    if refused:
        assert errors[0].host == "h1" and errors[0].key == "armada_roles" and "no NVIDIA GPU" in str(errors[0])
