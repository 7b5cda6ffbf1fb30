"""Data keys of the nvidia role (GPU hosts: NVIDIA GPUs on PCI)."""

import re

from armada.keys import Key, url


def _branch(value):
    return None if re.fullmatch(r"[0-9]{3,4}", value) and 400 <= int(value) < 2000 else "must be a driver branch such as '580'"


def _toolkit(value):
    return None if re.fullmatch(r"\d+-\d+", value) else "must look like '12-8' (cuda-toolkit-12-8)"


KEYS = (
    Key("nvidia_driver_branch", str, "580", "Driver branch pinned on GPU hosts (open kernel modules; Grace Hopper "
        "and Blackwell need them)", check=_branch),
    Key("nvidia_repo_mirror", str, None, "Mirror of https://developer.download.nvidia.com/compute/cuda/repos "
        "for air-gapped labs (same layout: <mirror>/<distro>/<arch>/)", nullable=True, check=url),
    Key("nvidia_cuda_toolkit", str, None, "CUDA toolkit to install, e.g. '12-8'; none by default (vLLM's wheels "
        "bring the CUDA runtime they need)", nullable=True, check=_toolkit),
    Key("nvidia_fabricmanager", str, "auto", "nvidia-fabricmanager: 'auto' installs it when NVSwitches are on PCI "
        "(HGX 8-GPU boards)", choices=("auto", "yes", "no")),
    Key("nvidia_imex", bool, False, "The host is part of a multi-node NVLink domain (GB200 NVL72): install and "
        "run nvidia-imex"),
    Key("nvidia_reboot", bool, True, "Reboot (one host at a time) when the driver packages changed; never an "
        "unchanged host"),
)
