"""Every unit armada writes is sandboxed (issue 16): the one decision in
armada.hardening.unit_hardening, and each unit template rendering it. The
exposure scores systemd-analyze gives these units on the lab are measured
in tests/test_lab_deploy.py and listed in the README."""

import re
import shutil
import subprocess

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


def rendered_units() -> dict[str, str]:
    """Every unit armada writes, rendered as the roles render them (a CPU serving host with Dynamo's secrets)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT), undefined=jinja2.StrictUndefined)
    data = with_defaults({"model_id": "o/m", "nats_password_file": "/s/n", "etcd_client_password_file": "/s/e"})
    serving = serving_sandbox(profile_of("x86-lab-vm"), data)
    common = dict(service_user="armada", current="/opt/armada/vllm/current", egress_env="/etc/armada/egress.env",
                  home="/var/lib/armada/home", root="/opt/armada", credentials={"nats-password": "/s/n"},
                  wait_control_plane=True, api_key_file="/s/k", hardening=serving)
    units = {
        "armada-nats.service": env.get_template("roles/nats/templates/armada-nats.service.j2").render(
            service_user="armada-nats", hardening=unit_hardening(["/var/lib/armada/nats"]),
            binary="/usr/sbin/nats-server", config="/etc/armada/nats.conf", launcher="/opt/armada/bin/armada-nats-start"),
        "armada-etcd.service": env.get_template("roles/etcd/templates/armada-etcd.service.j2").render(
            service_user="armada-etcd", hardening=unit_hardening(["/var/lib/armada/etcd"]), env_file="/etc/armada/e.env"),
        "armada-vllm.service": env.get_template("roles/vllm_service/templates/armada-vllm.service.j2").render(**common),
    }
    for name in ("armada-dynamo-frontend.service", "armada-dynamo-worker@.service"):
        units[name] = env.get_template(f"roles/dynamo/templates/{name}.j2").render(**common)
    return units


def exposure(folder, name: str, text: str) -> tuple[float, str]:
    """systemd's own rating of a unit file (systemd-analyze security --offline)."""
    path = folder / name
    path.write_text(text)
    out = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(path)],
                         capture_output=True, text=True).stdout
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", out)
    assert match, out[-1000:]
    return float(match.group(1)), match.group(2)


def test_systemd_rates_every_service_unit_ok(tmp_path):
    """Each service unit at 'OK' (<= 4.0) by systemd-analyze security; the bootstrap, which is
    armada's deploy running as root, is rated and said (README), not hidden."""
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing (Debian: systemd; .ci/run has it)"
    scores = {name: exposure(tmp_path, name, text) for name, text in rendered_units().items()}
    print("systemd-analyze security --offline:", scores)
    assert all(score <= 4.0 for score, _ in scores.values()), scores
    with open(f"{ROOT}/files/armada-bootstrap.service", encoding="utf-8") as handle:
        bootstrap = exposure(tmp_path, "armada-bootstrap.service", handle.read())
    assert bootstrap[0] < 9.6, bootstrap  # below an unsandboxed root service's 9.6
