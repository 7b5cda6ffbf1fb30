"""Python one-liners run with a venv's python: its torch build, its distributions.

Their JSON lines are parsed by :mod:`armada.parsers.torch`.
"""

from __future__ import annotations

import shlex

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

# both in one interpreter (one round trip, one python start): the distributions line first (no torch
# import needed), then torch's line, absent when torch does not import; read by parsers.torch.parse_venv_probe
VENV_PROBE = DISTRIBUTIONS_PROBE + "\n" + TORCH_PROBE

# the same two lines without importing torch (CPU hosts: an import costs seconds of CPU, 2.2 s on the
# lab): torch's own version.py, which imports nothing of torch, gives its version and CUDA version;
# whether the build is the one serving is read from the serving processes' memory maps instead
VENV_FILES_PROBE = DISTRIBUTIONS_PROBE + "\n" + (
    "import importlib.util, os, runpy\n"
    "spec = importlib.util.find_spec('torch')\n"
    "if spec and spec.origin:\n"
    "    v = runpy.run_path(os.path.join(os.path.dirname(spec.origin), 'version.py'))\n"
    "    print(json.dumps({'version': v['__version__'], 'cuda': v.get('cuda'), 'path': spec.origin}))"
)


def serving_processes_script(cgroup_pattern: str, venv: str) -> str:
    """A shell script printing ``install <the venv's real path>``, then ``process <pid> <comm> <libraries>``
    for each process whose cgroup line holds ``cgroup_pattern`` (the same under cgroup v1 and v2): the
    tcmalloc and torch libraries its memory maps (read by armada.parsers.torch.parse_serving_processes)."""
    return (
        f"echo install $(readlink -f {shlex.quote(venv)}); "
        f"for f in $(grep -l {shlex.quote(cgroup_pattern)} /proc/[0-9]*/cgroup 2>/dev/null); do p=${{f#/proc/}}; "
        "p=${p%/cgroup}; "
        "echo \"process $p $(tr ' ' _ < /proc/$p/comm 2>/dev/null) $(grep -o -e '/[^ ]*libtcmalloc[^ ]*' "
        "-e '/[^ ]*/libtorch_cpu\\.so' -e '/[^ ]*/libtorch_cuda\\.so' /proc/$p/maps 2>/dev/null | sort -u | tr '\\n' ' ')\"; "
        "done"
    )
