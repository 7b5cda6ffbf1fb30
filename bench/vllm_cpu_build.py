"""Build vLLM's CPU backend from source on Debian 13 and serve from it: the
route issue 20 asks for, run by hand here, outside armada's `source`
strategy (not wired into it yet: see the README, "Compiled vLLM").

What it does, as root on an x86_64 Debian machine that reaches PyPI and
Debian's archive (this machine's kind):

1. a Debian 13 "trixie" root with debootstrap (g++ 14.2, cmake 3.31,
   Python 3.13, libnuma-dev, ccache), this machine's CA certificates in it;
2. a build venv: the build requirements of vLLM's pyproject and torch
   ``--torch`` from PyPI. LAB ONLY: PyPI's only cp313 x86_64 torch is a CUDA
   build (PyTorch's CPU index is out of reach here), and its CMake config
   demands a CUDA toolkit even for a CPU extension ("Your installed Caffe2
   version uses CUDA but I cannot find the CUDA libraries"): ``--cuda-root``
   (this machine's CUDA 13.0 toolkit) is bind-mounted read-only for CMake,
   with libnvrtc from torch's own nvidia wheels. A real CPU host takes a
   CPU torch from PyTorch's CPU index and needs neither;
3. vLLM's sdist from PyPI (its sha256 from PyPI's simple index, checked) and
   oneDNN from a local source tree (``--onednn-src``, the tag vLLM's
   cmake/cpu_extension.cmake names, through FETCHCONTENT_SOURCE_DIR_ONEDNN:
   GitHub is out of reach, the way an air-gapped site builds);
4. ``VLLM_TARGET_DEVICE=cpu MAX_JOBS=<jobs> pip wheel --no-build-isolation``
   under /usr/bin/time -v, with ccache: prints the wall time, peak RSS and
   the wheel's size;
5. ``--rebuild``: one line of code added to one kernel source
   (csrc/cpu/activation.cpp, compiled once per ISA variant), built again:
   the cost of a rebuild with ccache (and the build folder's ninja state);
6. ``--serve MODEL_DIR``: the wheel installed into a serving venv (torch
   as in 2., the wheel with --no-deps, its other requirements from PyPI
   but torch's companions and triton-cpu's GitHub wheels), ``vllm serve``
   on the model, one chat completion, the server stopped.

Run: .venv/bin/python bench/vllm_cpu_build.py --onednn-src DIR [--rebuild]
[--serve /var/tmp/armada-lab/model/tiny]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.request
import zipfile

SUITE, MIRROR = "trixie", "http://deb.debian.org/debian"
PACKAGES = "g++,cmake,ninja-build,python3-venv,python3-dev,libnuma-dev,ca-certificates,ccache,curl,time,xz-utils"
BUILD_REQUIREMENTS = ['cmake>=3.26.1', 'ninja', 'packaging>=24.2', 'setuptools>=77.0.3,<81.0.0', 'setuptools-scm>=8.0',
                      'setuptools-rust>=1.9.0', 'wheel', 'jinja2']
NVRTC = "/opt/bvenv/lib/python3.13/site-packages/nvidia/cu13/lib/libnvrtc.so.13"
ENV_OUT = ("PIP_FIND_LINKS",)  # this machine's pip settings that mean nothing inside the trixie root


def sh(command: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    print(f"$ {command}", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ENV_OUT}
    return subprocess.run(["bash", "-c", command], check=check, text=True, env=env,
                          capture_output=capture)


def in_root(root: str, command: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    return sh(f"chroot {root} env -u PIP_FIND_LINKS bash -c {shlex.quote(command)}", capture=capture, check=check)


def mounted(path: str) -> bool:
    with open("/proc/mounts") as handle:
        return any(line.split()[1] == path for line in handle)


def prepare_root(root: str, cuda_root: str) -> None:
    if not os.path.exists(f"{root}/usr/bin/g++"):
        start = time.monotonic()
        sh(f"debootstrap --variant=minbase --include={PACKAGES} {SUITE} {root} {MIRROR}")
        print(f"debootstrap {SUITE}: {time.monotonic() - start:.0f} s")
    for name in os.listdir("/usr/local/share/ca-certificates"):
        shutil.copy(f"/usr/local/share/ca-certificates/{name}", f"{root}/usr/local/share/ca-certificates/")
    shutil.copy("/etc/resolv.conf", f"{root}/etc/resolv.conf")
    in_root(root, "update-ca-certificates >/dev/null")
    for path in ("proc", "dev", "sys"):
        if not mounted(f"{root}/{path}"):
            sh(f"mount --bind /{path} {root}/{path}")
    os.makedirs(f"{root}/usr/local/cuda", exist_ok=True)
    if not mounted(f"{root}/usr/local/cuda"):  # LAB ONLY: torch's CUDA build's CMake config wants a toolkit
        sh(f"mount --bind -o ro {shlex.quote(cuda_root)} {root}/usr/local/cuda")
    print(in_root(root, "g++ --version | head -1; cmake --version | head -1; python3 --version",
                  capture=True).stdout)


def sdist(version: str, folder: str) -> str:
    """vLLM's sdist from PyPI, its sha256 checked against PyPI's simple index (PEP 691 JSON: the per-release
    JSON API answers 404 through this machine's mirror); unpacked in ``folder``."""
    request = urllib.request.Request("https://pypi.org/simple/vllm/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        index = json.load(response)
    (entry,) = [f for f in index["files"] if f["filename"] == f"vllm-{version}.tar.gz"]
    path = f"{folder}/{entry['filename']}"
    if not os.path.exists(path):
        sh(f"curl -sSLo {path} {shlex.quote(entry['url'])}")
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    if digest != entry["hashes"]["sha256"]:
        raise SystemExit(f"{path}: sha256 {digest}, PyPI says {entry['hashes']['sha256']}")
    print(f"vLLM {version} sdist: {entry['filename']}, sha256 {digest} (PyPI's)")
    source = f"{folder}/vllm-{version}"
    if not os.path.isdir(source):
        sh(f"tar xzf {path} -C {folder}")
    return source


def build(root: str, source: str, onednn: str, jobs: int, label: str) -> dict:
    inner = source.removeprefix(root)
    script = (
        f"cd {inner} && export VLLM_TARGET_DEVICE=cpu MAX_JOBS={jobs} FETCHCONTENT_SOURCE_DIR_ONEDNN={onednn} "
        "CCACHE_DIR=/var/cache/ccache PATH=/opt/bvenv/bin:/usr/local/cuda/bin:$PATH "
        f"CUDACXX=/usr/local/cuda/bin/nvcc CMAKE_ARGS=-DCUDA_nvrtc_LIBRARY={NVRTC} && rm -rf /out && "
        "ccache -z >/dev/null && /usr/bin/time -v /opt/bvenv/bin/pip wheel --no-build-isolation --no-deps -w /out . "
        "> /build.log 2>&1; rc=$?; tail -30 /build.log; ccache -s | grep -Ei 'hits|misses'; exit $rc")
    start = time.monotonic()
    result = in_root(root, script, capture=True, check=False)
    wall = time.monotonic() - start
    print(result.stdout[-3000:])
    if result.returncode:
        raise SystemExit(f"{label}: the build failed (exit {result.returncode}); its log: {root}/build.log")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stdout)
    wheels = [name for name in os.listdir(f"{root}/out") if name.endswith(".whl")]
    size = os.path.getsize(f"{root}/out/{wheels[0]}")
    figures = {"label": label, "wall_s": round(wall), "peak_rss_gib": round(int(peak.group(1)) / 2**20, 2) if peak else None,
               "wheel": wheels[0], "wheel_mb": round(size / 1e6, 1)}
    print(f"{label}: {figures['wall_s']} s, peak RSS {figures['peak_rss_gib']} GiB (pip and its children's "
          f"largest), wheel {wheels[0]} {figures['wheel_mb']} MB")
    return figures


def serve(root: str, model: str, torch: str) -> None:
    """The wheel in a serving venv (torch as in the build venv, the wheel with --no-deps, then its other
    requirements from PyPI: its torch==<version>+cpu pin has no cp313 wheel on PyPI, and torchvision,
    torchaudio, torchcodec and triton-cpu's GitHub wheels are left out), vllm serve on the model, one
    chat completion."""
    shutil.copytree(model, f"{root}/model/{os.path.basename(os.path.normpath(model))}", dirs_exist_ok=True)
    inner_model = f"/model/{os.path.basename(os.path.normpath(model))}"
    wheel = [name for name in os.listdir(f"{root}/out") if name.endswith(".whl")][0]
    with zipfile.ZipFile(f"{root}/out/{wheel}") as archive:
        (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(meta).decode().splitlines()
    wanted = [line.split(": ", 1)[1] for line in lines if line.startswith("Requires-Dist: ")
              and "extra ==" not in line and not re.match(r"Requires-Dist: (torch|torchaudio|torchvision|torchcodec|"
                                                          r"triton)\b", line)]
    with open(f"{root}/serve-requirements.txt", "w") as handle:
        handle.write("\n".join(wanted) + "\n")
    start = time.monotonic()
    in_root(root, f"test -x /opt/svenv/bin/python || python3 -m venv /opt/svenv; /opt/svenv/bin/pip install -q "
                  f"'torch=={torch}' && /opt/svenv/bin/pip install -q --no-deps /out/{wheel} && "
                  "/opt/svenv/bin/pip install -q -r /serve-requirements.txt")
    print(f"serving venv: {len(wanted)} requirements besides torch and the wheel, {time.monotonic() - start:.0f} s")
    script = (f"cd /tmp && start=$(date +%s); (VLLM_CPU_KVCACHE_SPACE=1 /opt/svenv/bin/vllm serve {inner_model} "
              "--served-model-name tiny --host 127.0.0.1 --port 8123 --max-model-len 256 > /serve.log 2>&1 &) ; "
              "for i in $(seq 900); do curl -sf --noproxy '*' http://127.0.0.1:8123/health >/dev/null && break; "
              "sleep 1; done; echo \"ready after $(( $(date +%s) - start )) s\"; "
              "curl -sS --noproxy '*' http://127.0.0.1:8123/v1/chat/completions -H 'Content-Type: application/json' "
              "-d '{\"model\":\"tiny\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}'")
    result = in_root(root, script, capture=True, check=False)
    in_root(root, "pkill -f 'vllm serve' || true", check=False)
    print(result.stdout[-1500:])
    try:
        body = json.loads(result.stdout[result.stdout.find("{"):])
        print(f"completion from the compiled vLLM: {body['usage']['completion_tokens']} tokens, "
              f"{body['choices'][0]['message']['content']!r}")
    except (ValueError, KeyError):
        print(open(f"{root}/serve.log").read()[-3000:])
        raise SystemExit("vllm serve did not complete a request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/var/tmp/armada-vllm-build/trixie")
    parser.add_argument("--vllm", default="0.31.0")
    parser.add_argument("--torch", default="2.13.0")
    parser.add_argument("--onednn-src", required=True, help="oneDNN source tree at the tag vLLM names (v3.13)")
    parser.add_argument("--cuda-root", default="/usr/local/cuda-13.0")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true", help="then one line changed, built again (ccache)")
    parser.add_argument("--serve", metavar="MODEL_DIR")
    args = parser.parse_args()
    if os.geteuid():
        raise SystemExit("run as root (debootstrap, chroot, mounts)")
    root = args.root
    prepare_root(root, args.cuda_root)
    os.makedirs(f"{root}/src", exist_ok=True)
    onednn = f"/src/{os.path.basename(os.path.normpath(args.onednn_src))}"  # its name kept: ccache hashes paths
    if not os.path.isdir(f"{root}{onednn}"):
        shutil.copytree(args.onednn_src, f"{root}{onednn}", symlinks=True)
    in_root(root, f"test -x /opt/bvenv/bin/python || python3 -m venv /opt/bvenv; /opt/bvenv/bin/pip install -q "
                  f"'torch=={args.torch}' " + " ".join(shlex.quote(r) for r in BUILD_REQUIREMENTS))
    source = sdist(args.vllm, f"{root}/src")
    figures = [build(root, source, onednn, args.jobs, "build")]
    if args.rebuild:
        kernel = f"{source}/csrc/cpu/activation.cpp"
        with open(kernel, "a") as handle:  # code, not a comment: ccache's preprocessed mode would match a comment
            handle.write(f"[[maybe_unused]] static const long armada_bench_line = {int(time.time())};\n")
        figures.append(build(root, source, onednn, args.jobs, "rebuild after a one-line change (ccache)"))
    if args.serve:
        serve(root, args.serve, args.torch)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
