"""What a venv holds (its torch build, its distributions) and the vLLM installs."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from armada.commands.torch import DISTRIBUTIONS_PROBE, TORCH_PROBE
from armada.facts.base import _process
from armada.parsers.torch import parse_distributions, parse_torch_probe


class VenvTorch(FactBase):
    """The torch build inside a venv: version, CUDA version, CUDA available, GPUs.

    None when the venv or torch is missing.
    """

    def command(self, venv: str):
        python = shlex.quote(f"{venv}/bin/python")
        return f"if [ -x {python} ]; then {python} -c {shlex.quote(TORCH_PROBE)} 2>/dev/null || true; fi"

    def process(self, output):
        return _process(parse_torch_probe, "\n".join(output))


class VenvDistributions(FactBase):
    """Distributions installed in a venv: name -> version (local labels kept).

    Empty when the venv is missing.
    """

    @staticmethod
    def default():
        return {}

    def command(self, venv: str):
        python = shlex.quote(f"{venv}/bin/python")
        probe = shlex.quote(DISTRIBUTIONS_PROBE)
        return f"if [ -x {python} ]; then {python} -c {probe}; fi"

    def process(self, output):
        return _process(parse_distributions, "\n".join(output))


class VllmInstalls(FactBase):
    """The vLLM installs under ``<root>/vllm`` (directories), newest first."""

    @staticmethod
    def default():
        return []

    def command(self, root: str):
        folder = shlex.quote(f"{root}/vllm")
        return f"[ -d {folder} ] && find {folder} -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\\n' || true"

    def process(self, output):
        rows = []
        for line in output:
            stamp, _, path = line.partition(" ")
            if path:
                rows.append((float(stamp), path))
        return [path for _, path in sorted(rows, reverse=True)]
