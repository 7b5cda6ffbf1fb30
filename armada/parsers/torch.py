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
