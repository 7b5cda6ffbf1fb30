"""Data keys of the vllm role, with defaults. Inventory data overrides them.

``None`` means "decide from the host's facts": the profile
(:func:`armada.profile.build_profile`) says what it chose and why.
"""

import re

from armada.keys import (
    SECRET,
    Key,
    at_least,
    env_map,
    fraction,
    git_ref,
    git_url,
    host_address,
    list_of,
    package_name,
    port,
    relative_path,
    requirement,
    secret_path,
    strings,
    url,
    url_or_dir,
    version,
)

KEYS = (
    Key("vllm_accelerator", str, "auto", "Serve on 'cuda' or 'cpu'; 'auto' picks cuda when the host has NVIDIA GPUs",
        choices=("auto", "cuda", "cpu")),
    Key("vllm_version", str, "0.31.0", "vLLM release to serve (the version NVIDIA Dynamo 1.6.1 pins)", check=version),
    Key("vllm_strategy", str, "auto",
        "How vLLM is installed: 'pypi' (vllm_spec from an index), 'wheel' (from vllm_wheelhouse), "
        "'source' (vllm_git_url at vllm_git_commit, VLLM_TARGET_DEVICE=cpu on CPU hosts); "
        "'auto': pypi on GPU hosts, source on CPU-only hosts",
        choices=("auto", "pypi", "wheel", "source")),
    Key("vllm_spec", str, None, "pip requirement installed (pypi/wheel), or that the 'source' build must produce; "
        "default 'vllm==<vllm_version>'", nullable=True, check=requirement),
    Key("vllm_wheelhouse", str, None,
        "Folder on the control machine or URL holding wheels (vLLM, torch) for air-gapped or pinned installs; "
        "the 'source' strategy publishes its builds to <folder>/builds/<key>/ (default ~/.cache/armada/wheelhouse)",
        nullable=True, check=url_or_dir),
    Key("vllm_git_url", str, "https://github.com/vllm-project/vllm.git", "Repository the 'source' strategy builds",
        check=git_url),
    Key("vllm_git_commit", str, None, "Commit or tag the 'source' strategy builds; default 'v<vllm_version>'",
        nullable=True, check=git_ref),
    Key("vllm_build_requirements", str, "requirements/build/cpu.txt",
        "'source': the build requirements file inside the repository (its torch line is replaced by the "
        "profile's torch)", check=relative_path),
    Key("vllm_build_env", dict, {}, "'source': extra build environment over VLLM_TARGET_DEVICE and MAX_JOBS "
        "(e.g. FETCHCONTENT_SOURCE_DIR_ONEDNN, ACL_ROOT_DIR for an offline oneDNN / Arm Compute Library)",
        check=env_map),
    Key("vllm_build_jobs", int, None, "'source': parallel compile jobs (MAX_JOBS); default min(cores, GiB / 2)",
        nullable=True, check=at_least(1)),
    Key("vllm_build_min_gcc", str, "12.3", "'source': the least g++ the builder must have (vLLM's CPU build "
        "refuses older on x86_64, and Debian 12's 12.2 crashes on its kernels)", check=version),
    Key("torch_version", str, "2.13.0", "torch release installed before vLLM and pinned by a constraints file "
        "(the release vLLM 0.31.0 is built against)", check=version),
    Key("torch_index_url", str, None, "Index to take torch from; default chosen by the profile (arch, accelerator, "
        "torch version)", nullable=True, check=url),
    Key("torch_cuda_variant", str, "cu128",
        "CUDA flavour of PyTorch's own index, used on aarch64 GPU hosts pinned to torch < 2.11 "
        "(cu128 is the first with Blackwell support)", check=lambda v: None if re.fullmatch(r"cu[0-9]{2,4}", v) else "must look like 'cu128' (cu and digits)"),
    Key("vllm_tensor_parallel_size", int, None,
        "Tensor-parallel ranks; default: GPUs on the host, or NUMA nodes with CPUs on CPU hosts",
        nullable=True, check=at_least(1)),
    Key("vllm_smoke_test", bool, True, "Run vLLM's compiled rms_norm once on the host after an install, before "
        "it may serve (an illegal instruction or a wrong result stops the host, what served keeps serving); off only "
        "for a package that is not vLLM"),
    Key("vllm_dtype", str, "auto", "Model dtype; 'auto': bfloat16 where the hardware has it, else float16 (old GPUs) "
        "or float32 (CPUs without bf16)", choices=("auto", "bfloat16", "float16", "float32")),
    Key("vllm_gpu_memory_utilization", float, 0.9, "Share of each GPU's memory vLLM may take", check=fraction),
    Key("vllm_kvcache_space_gib", int, None, "CPU serving: KV cache GiB per rank (VLLM_CPU_KVCACHE_SPACE); "
        "default from the host's memory and the model's size", nullable=True, check=at_least(1)),
    Key("vllm_cpu_reserved_cores", int, None, "CPU serving: cores per rank kept out of the OpenMP binding for the "
        "API server and tokenizer; default 1 from 8 cores per rank, else 0 (on 2 cores, binding both served a "
        "half more tokens/s: bench/lab_tuning.py)", nullable=True, check=at_least(0)),
    Key("vllm_max_model_len", int, None, "--max-model-len; default: the model's own", nullable=True, check=at_least(16)),
    Key("vllm_exclude_deps", list, [], "Requirements of the vLLM package NOT to install (e.g. torchvision, "
        "torchaudio, torchcodec for text-only CPU serving, where PyPI's builds do not match a +cpu torch)",
        check=list_of(package_name, "a list of package names")),
    Key("vllm_extra_requirements", list, [], "Extra requirements installed into the serving venv after vLLM, "
        "under the torch pin and from the same sources (plugins; the lab's torchvision adaptation)",
        check=list_of(requirement, "a list of requirements")),
    Key("vllm_extra_args", list, [], "Extra command-line arguments for the vLLM server (each one argument, "
        "shell-quoted in its launcher; no line breaks)", check=strings),
    Key("vllm_keep_installs", int, 3, "vLLM installs kept on a host (the serving and the previous one always are); "
        "older ones are pruned", check=at_least(2)),
    Key("vllm_api_key_file", str, None, "File ON THE HOST holding the API key clients must send (Bearer); "
        "given to vLLM through systemd's LoadCredential as VLLM_API_KEY, never on a command line; "
        "requests without it get 401", nullable=True, check=secret_path, holds=SECRET),
    Key("vllm_host", str, "127.0.0.1", "Address the OpenAI-compatible server binds: loopback by default; beyond "
        "it (0.0.0.0, an interface's address) needs vllm_api_key_file", check=host_address),
    Key("vllm_port", int, 8000, "Port of the OpenAI-compatible server", check=port),
)
