"""The smoke test an install passes before it may serve: vLLM's compiled kernels,
loaded the way vLLM loads them, run one real op.

Run as ``<venv>/bin/python -X faulthandler -c VLLM_SMOKE <dtype>`` through
:func:`smoke_command`; its output is judged by :func:`armada.parsers.vllm.smoke_result`.
"""

from __future__ import annotations

import shlex

# vLLM's platform picks its compiled extension (vllm._C, or _C_AVX2/_C_AVX512 on x86 CPUs; the
# CUDA one on GPU hosts) and only warns when it fails to load, so the op itself must be called:
# rms_norm is registered by every backend and runs in every dtype vLLM serves. Prints one JSON line.
VLLM_SMOKE = """\
import json, sys, torch, vllm
from vllm.platforms import current_platform
current_platform.import_kernels()
dtype = getattr(torch, sys.argv[1])
device = "cuda" if current_platform.is_cuda() else "cpu"
torch.manual_seed(0)
x = torch.randn(8, 256, device=device).to(dtype)
w = torch.rand(256, device=device).to(dtype)
out = torch.empty_like(x)
torch.ops._C.rms_norm(out, x, w, 1e-6)
xf, wf = x.float(), w.float()
ref = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6) * wf
print(json.dumps({"vllm": vllm.__version__, "torch": torch.__version__, "device": device, "dtype": sys.argv[1],
                  "op": "rms_norm", "max_error": (out.float() - ref).abs().max().item(),
                  "scale": ref.abs().max().item()}))
"""

# vLLM's --dtype names -> torch's
SMOKE_DTYPES = {"auto": "float32", "half": "float16", "float16": "float16", "bfloat16": "bfloat16",
                "float": "float32", "float32": "float32"}
EXIT_MARK = "armada-smoke-exit="


def smoke_command(python_bin: str, dtype: str, timeout_s: int = 900) -> str:
    """The shell line that runs the smoke test (see :func:`report_exit`)."""
    torch_dtype = SMOKE_DTYPES.get(dtype, "float32")
    return report_exit(f"cd / && VLLM_NO_USAGE_STATS=1 timeout {timeout_s} {shlex.quote(python_bin)} -X faulthandler "
                       f"-c {shlex.quote(VLLM_SMOKE)} {torch_dtype}")


def report_exit(command: str) -> str:
    """``command`` with its output and, always last, its exit status (a signal shows as 128 + its
    number), so that a crash is read, not lost in a failed command."""
    return f"{command} 2>&1; echo {EXIT_MARK}$?"


def prompt_throughput_command(unit: str, since: str, wait_s: int = 15) -> str:
    """A bash script printing the stats lines (``Avg prompt throughput``) ``unit``'s vLLM engine logged
    since ``since`` (epoch seconds on the host), waiting up to ``wait_s`` s for one with a non-zero
    prompt throughput (vLLM logs its stats every 10 s after activity); parsed by
    armada.parsers.vllm.prompt_throughput_seen."""
    grep = f"journalctl -u {shlex.quote(unit)} --since @{int(since)} -o cat | grep 'Avg prompt throughput'"
    return (f"for i in $(seq {int(wait_s)}); do {grep} | grep -q 'throughput: [0-9.]*[1-9]' && break; sleep 1; "
            f"done; {grep} | tail -20")
