"""Every unit armada writes is sandboxed (issue 16): the one decision in
armada.hardening.unit_hardening, and each unit template rendering it. The
exposure scores systemd-analyze gives these units on the lab are measured
in tests/test_lab_deploy.py and listed in the README."""

import jinja2
import pytest
from conftest import ROOT
from test_roles import profile_of

from armada.hardening import unit_hardening
from armada.schema import with_defaults
from armada.serving import serving_sandbox

CLOSED = ("NoNewPrivileges=true", "CapabilityBoundingSet=", "AmbientCapabilities=", "ProtectSystem=strict",
          "ProtectHome=true", "PrivateTmp=true", "ProtectKernelTunables=true", "ProtectKernelModules=true",
          "ProtectKernelLogs=true", "ProtectControlGroups=true", "ProtectClock=true", "ProtectHostname=true",
          "ProtectProc=invisible", "RestrictNamespaces=true", "RestrictRealtime=true", "RestrictSUIDSGID=true",
          "LockPersonality=true", "SystemCallArchitectures=native", "SystemCallFilter=@system-service",
          "UMask=0077")


def lines(text):
    return text.splitlines()


def test_a_go_service_gets_everything_closed():
    unit = lines(unit_hardening(["/var/lib/armada/etcd"]))
    assert set(CLOSED) <= set(unit)
    assert {"MemoryDenyWriteExecute=true", "ProcSubset=pid", "PrivateDevices=true",
            "ReadWritePaths=/var/lib/armada/etcd", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"} <= set(unit)


def test_the_serving_units_keep_only_what_pytorch_needs():
    data = with_defaults({"model_id": "org/m"})
    cpu = lines(serving_sandbox(profile_of("x86-lab-vm"), data))
    assert set(CLOSED) <= set(cpu) and "PrivateDevices=true" in cpu
    # oneDNN's JIT and torch.compile write code; /proc/cpuinfo and NUMA; gloo's getifaddrs
    assert "MemoryDenyWriteExecute=true" not in cpu and "ProcSubset=pid" not in cpu
    assert "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" in cpu
    # writable: its home and the HF cache, nothing else of the data root (not etcd's, not JetStream's)
    assert [line for line in cpu if line.startswith("ReadWritePaths=")] == [
        "ReadWritePaths=/var/lib/armada/home", "ReadWritePaths=/var/lib/armada/hf-home"]
    gpu = lines(serving_sandbox(profile_of("gh200"), data))
    assert "PrivateDevices=true" not in gpu and set(CLOSED) <= set(gpu)  # CUDA opens /dev/nvidia*


@pytest.mark.parametrize("template", [
    "roles/nats/templates/armada-nats.service.j2", "roles/etcd/templates/armada-etcd.service.j2",
    "roles/vllm_service/templates/armada-vllm.service.j2", "roles/dynamo/templates/armada-dynamo-frontend.service.j2",
    "roles/dynamo/templates/armada-dynamo-worker@.service.j2"])
def test_every_unit_renders_its_sandbox_and_runs_as_its_user(template):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT), undefined=jinja2.ChainableUndefined)
    unit = env.get_template(template).render(service_user="u", hardening=unit_hardening(["/d"]), credentials={})
    assert "\nUser=u\n" in unit and "\nCapabilityBoundingSet=\n" in unit and "\nSystemCallFilter=@system-service\n" in unit


def test_the_bootstrap_unit_says_why_it_keeps_root():
    with open(f"{ROOT}/files/armada-bootstrap.service", encoding="utf-8") as handle:
        unit = handle.read()
    assert "keeps root" in unit and "ProtectKernelLogs=true" in unit and "User=" not in unit
