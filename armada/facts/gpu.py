"""PCI devices and NVIDIA GPUs as the driver sees them."""

from __future__ import annotations

from pyinfra.api import FactBase

from armada.commands.snapshot import SNAPSHOT_COMMANDS
from armada.facts.base import _process
from armada.parsers.gpu import parse_nvidia_smi_csv, parse_pci


class PciDevices(FactBase):
    """Every PCI function from /sys/bus/pci/devices (no lspci needed)."""

    def command(self):
        return SNAPSHOT_COMMANDS["pci.txt"]

    @staticmethod
    def default():
        return ()

    def process(self, output):
        return _process(parse_pci, "\n".join(output))


class NvidiaSmi(FactBase):
    """GPUs as the NVIDIA driver sees them; empty when nvidia-smi is absent."""

    def requires_command(self, *args, **kwargs):
        return "nvidia-smi"

    def command(self):
        return SNAPSHOT_COMMANDS["nvidia-smi.csv"]

    @staticmethod
    def default():
        return ()

    def process(self, output):
        return _process(parse_nvidia_smi_csv, "\n".join(output))
