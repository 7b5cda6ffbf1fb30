"""torch and the distributions inside a venv, from the JSON lines of the
probes in :mod:`armada.commands.torch`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from armada.parsers import ParseError


@dataclass(frozen=True)
class TorchBuild:
    version: str
    cuda: str | None
    cuda_available: bool
    device_count: int
    path: str | None = None

    @property
    def is_cuda_build(self) -> bool:
        return self.cuda is not None


def parse_torch_probe(text: str) -> TorchBuild | None:
    """The JSON line printed by :data:`armada.commands.torch.TORCH_PROBE`;
    None when torch is absent."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
                return TorchBuild(
                    version=data["version"],
                    cuda=data.get("cuda"),
                    cuda_available=bool(data.get("cuda_available")),
                    device_count=int(data.get("device_count") or 0),
                    path=data.get("path"),
                )
            except (ValueError, KeyError) as exc:
                raise ParseError(f"bad torch probe output {line!r}: {exc}") from None
    return None


def parse_distributions(text: str) -> dict[str, str]:
    """The JSON line printed by :data:`armada.commands.torch.DISTRIBUTIONS_PROBE`:
    installed name -> version.

    Names are as the packages spell them; versions keep their local label
    (``2.13.0+cpu``), which ``pip freeze`` parsers tend to lose.
    """
    for line in reversed(text.splitlines()):
        if line.strip().startswith("{"):
            try:
                return {str(k): str(v) for k, v in json.loads(line).items()}
            except ValueError as exc:
                raise ParseError(f"bad distributions probe output: {exc}") from None
    return {}


def parse_venv_probe(text: str) -> tuple[TorchBuild | None, dict[str, str]]:
    """The lines printed by :data:`armada.commands.torch.VENV_PROBE`: (torch's build, or None when it did
    not import; installed name -> version). The distributions line comes first, torch's after it."""
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("{")]
    if not lines:
        return None, {}
    return parse_torch_probe("\n".join(lines[1:])), parse_distributions(lines[0])


@dataclass(frozen=True)
class ServingProcess:
    pid: int
    comm: str
    libraries: tuple[str, ...]  # the tcmalloc and libtorch_* files its memory maps (real paths)


def parse_serving_processes(text: str) -> tuple[str | None, list[ServingProcess]]:
    """The lines printed by :func:`armada.commands.torch.serving_processes_script`: (the install's real
    path, or None; each process found with what it maps)."""
    install, processes = None, []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "install":
            install = words[1]
        elif len(words) >= 3 and words[0] == "process" and words[1].isdigit():
            processes.append(ServingProcess(int(words[1]), words[2], tuple(words[3:])))
    return install, processes
