"""Test inventory: the ``source`` strategy on the lab's two x86_64 hosts.

They build and install a small real package (tests/fixtures/buildprobe)
from a git repository the test serves on the lab bridge, under their own
armada_root (the serving install in /opt/armada is never touched). The test
sets ARMADA_TEST_GIT_URL, ARMADA_TEST_WHEELHOUSE and, to check the compiler
gate, ARMADA_TEST_MIN_GCC.
"""

import os
from glob import glob

from armada.lab import hosts as _lab

builders = (
    [_lab.inventory_entry("armada-serve"), _lab.inventory_entry("armada-serve2")],
    {
        "armada_roles": ["base", "vllm"],
        "armada_root": "/opt/armada-buildtest",
        "vllm_strategy": "source",
        "vllm_version": "0.1.0",
        "vllm_spec": "armada-buildprobe==0.1.0",
        "vllm_git_url": os.environ.get("ARMADA_TEST_GIT_URL", "git://10.213.0.1/buildprobe"),
        "vllm_git_commit": "v0.1.0",
        "vllm_wheelhouse": os.environ.get("ARMADA_TEST_WHEELHOUSE"),
        # Debian 12's g++ 12.2 builds this package; the default (12.3, vLLM's) refuses it
        "vllm_build_min_gcc": os.environ.get("ARMADA_TEST_MIN_GCC", "12.2"),
        # LAB ONLY: the package built here stands in for vLLM's build path; it has no vLLM kernels to smoke-test
        "vllm_smoke_test": False,
        "torch_version": "2.13.0+cpu",
        "torch_index_url": "https://pypi.org/simple",
        "armada_proxy": f"http://{_lab.GATEWAY}:{_lab.PROXY_PORT}",
        "armada_ca_certs": sorted(glob("/usr/local/share/ca-certificates/*.crt")),
    },
)
