"""The lab's layout with light hosts (no lab needed): names, addresses, the
kept count, and the inventory's groups for them (a base-only group, or an
etcd cluster of the first three with their own certificates)."""

import runpy

import pytest

from armada.lab import layout
from conftest import ROOT


def test_light_hosts_are_named_and_addressed_after_the_three():
    assert [(h.name, h.address, h.arch) for h in layout.light_hosts(2)] == [
        ("armada-light1", "10.213.0.101", "x86_64"), ("armada-light2", "10.213.0.102", "x86_64")]
    assert layout.lab_host("armada-light7").address == "10.213.0.107"
    assert layout.lab_host("armada-cp") is layout.HOSTS_BY_NAME["armada-cp"]
    addresses = {h.address for h in layout.HOSTS} | {h.address for h in layout.light_hosts(layout.LIGHT_MAX)}
    assert len(addresses) == 3 + layout.LIGHT_MAX  # no light host takes a main host's address
    assert all(len(h.veth) <= 15 for h in layout.light_hosts(layout.LIGHT_MAX))  # Linux interface names
    with pytest.raises(ValueError):
        layout.light_host(layout.LIGHT_MAX + 1)


def test_the_count_is_kept_in_the_lab_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ARMADA_LAB_DIR", str(tmp_path))
    assert layout.light_count() == 0 and layout.all_hosts() == layout.HOSTS
    (tmp_path / "light-hosts").write_text("4\n")
    assert [h.name for h in layout.all_hosts()][3:] == [f"armada-light{i}" for i in range(1, 5)]


def inventory(monkeypatch, tmp_path, count, cluster):
    monkeypatch.setenv("ARMADA_LAB_DIR", str(tmp_path))
    (tmp_path / "light-hosts").write_text(f"{count}\n")
    if cluster:
        monkeypatch.setenv("ARMADA_LAB_ETCD_CLUSTER", "1")
    else:
        monkeypatch.delenv("ARMADA_LAB_ETCD_CLUSTER", raising=False)
    return runpy.run_path(f"{ROOT}/inventories/local.py")


def test_inventory_groups_for_light_hosts(monkeypatch, tmp_path):
    plain = inventory(monkeypatch, tmp_path, 2, cluster=False)
    assert [name for name, _ in plain["light"][0]] == ["armada-light1", "armada-light2"]
    assert plain["light"][1]["armada_roles"] == ["base"] and "etcd_cluster" not in plain

    both = inventory(monkeypatch, tmp_path, 4, cluster=True)
    members = both["etcd_cluster"][0]
    assert [name for name, _ in members] == ["armada-light1", "armada-light2", "armada-light3"]
    assert members[0][1]["etcd_tls_cert_file"] == "/etc/armada-secrets/armada-light1.crt"
    assert members[2][1]["etcd_tls_key_file"] == "/etc/armada-secrets/armada-light3-etcd.key"
    assert both["etcd_cluster"][1]["etcd_cluster_group"] == "etcd_cluster"
    assert [name for name, _ in both["light"][0]] == ["armada-light4"]


def test_the_cluster_inventory_passes_armadas_own_checks(monkeypatch, tmp_path):
    from armada.inventory import load_inventory, validate_inventory

    inventory(monkeypatch, tmp_path, 3, cluster=True)
    errors = validate_inventory(load_inventory(f"{ROOT}/inventories/local.py"))
    assert [e for e in errors if e.host.startswith("armada-light")] == []
