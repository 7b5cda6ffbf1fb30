"""Python one-liners run with a venv's python: its torch build, its distributions.

Their JSON lines are parsed by :mod:`armada.parsers.torch`.
"""

from __future__ import annotations

# prints one JSON line: torch's version, its CUDA version, whether CUDA works, the GPUs, where torch is
TORCH_PROBE = (
    "import json, torch; "
    "print(json.dumps({'version': torch.__version__, 'cuda': torch.version.cuda, "
    "'cuda_available': torch.cuda.is_available(), "
    "'device_count': torch.cuda.device_count() if torch.cuda.is_available() else 0, "
    "'path': torch.__file__}))"
)

# prints one JSON line: every installed distribution's name -> version
DISTRIBUTIONS_PROBE = (
    "import json, importlib.metadata as md; "
    "print(json.dumps({d.metadata['Name']: d.version for d in md.distributions()}))"
)
