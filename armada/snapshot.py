"""Host snapshots: the raw outputs armada's facts read, one folder per host.

``take_snapshots`` connects with pyinfra and saves the outputs of
:data:`armada.commands.snapshot.SNAPSHOT_COMMANDS`; ``read_snapshot`` loads such a
folder (any file may be missing) for the offline profile.
"""

from __future__ import annotations

import os
import re

from pyinfra.api import Config, State
from pyinfra.api.connect import connect_all

from armada.commands.snapshot import SNAPSHOT_COMMANDS
from armada.facts.host import RawSnapshot
from armada.inventory import load_inventory

# Outputs kept from other commands, read when ours are missing.
FALLBACK_FILES = ("lscpu.partial.txt", "free.txt", "lspci.txt", "nvidia-smi.txt")


def read_snapshot(folder: str) -> dict[str, str]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"snapshot folder {folder!r} does not exist")
    outputs = {}
    for name in (*SNAPSHOT_COMMANDS, *FALLBACK_FILES):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                outputs[name] = handle.read()
    return outputs


def _folder_name(host_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", host_name)


def take_snapshots(inventory_path: str, outdir: str) -> dict[str, str]:
    """Save every reachable host's raw outputs; returns host -> folder (or error)."""
    inventory = load_inventory(inventory_path)
    state = State(inventory, Config())
    connect_all(state)
    results: dict[str, str] = {}
    for host in inventory:
        if host not in state.activated_hosts:
            results[host.name] = "error: could not connect"
            continue
        outputs = host.get_fact(RawSnapshot)
        folder = os.path.join(outdir, _folder_name(host.name))
        os.makedirs(folder, exist_ok=True)
        for name, text in outputs.items():
            if text.strip():
                with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
                    handle.write(text if text.endswith("\n") else text + "\n")
        results[host.name] = folder
    return results
