"""Where armada's own shipped files are: the repository (a checkout or an
editable install) or, from an installed wheel, ``<prefix>/share/armada``
(pyproject's data-files put deploys/ and files/ there)."""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared(relative: str) -> str:
    """The path of ``deploys/llm.py``, ``files/...`` in this install."""
    for base in (REPO, os.path.join(sys.prefix, "share", "armada")):
        candidate = os.path.join(base, relative)
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"{relative} is neither in {REPO} nor in {sys.prefix}/share/armada")
