"""The lab's root filesystem images: debootstrap once per architecture (arm64
under qemu-user-static), kept as tarballs in the cache."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import subprocess
import tempfile
import time

from armada.lab.layout import HOSTS, INCLUDE, MIRROR, SUITE, cache_path
from armada.lab.process import LabError, Log, remove_tree, run_cmd, say


def ensure_binfmt() -> None:
    """aarch64 binaries run through qemu-user-static (binfmt_misc, F flag)."""
    if not os.path.exists("/proc/sys/fs/binfmt_misc/register"):
        run_cmd(["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"])
    run_cmd(["update-binfmts", "--enable", "qemu-aarch64"], check=False)  # "already enabled" is not an error
    entry = "/proc/sys/fs/binfmt_misc/qemu-aarch64"
    try:
        with open(entry, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise LabError(f"qemu-aarch64 is not registered with binfmt_misc ({exc}): apt-get install qemu-user-static binfmt-support") from exc
    if "enabled" not in text.splitlines()[0]:
        raise LabError(f"{entry}: {text.splitlines()[0]}")
    if "F" not in next((line for line in text.splitlines() if line.startswith("flags:")), ""):
        # without the F (fix-binary) flag the interpreter must exist inside every rootfs
        raise LabError(f"{entry} lacks the F flag; the qemu interpreter would be missing inside the container")


def build_cache(debarch: str, log: Log = say) -> float:
    """debootstrap a rootfs into a temp dir and tar it to the cache; returns seconds taken.

    The tarball appears atomically (rename), so a killed build leaves no half cache;
    its temp dir is removed by the next build (builds are serialised by the lab lock).
    """
    target = cache_path(debarch)
    cache = os.path.dirname(target)
    os.makedirs(cache, exist_ok=True)
    for stale in os.listdir(cache):
        if stale.startswith(f".build-{debarch}-"):
            remove_tree(os.path.join(cache, stale))
    if debarch != native_debarch():
        ensure_binfmt()
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix=f".build-{debarch}-", dir=cache)
    try:
        root = os.path.join(workdir, "rootfs")
        cmd = ["debootstrap", "--variant=minbase", f"--include={INCLUDE}"]
        if debarch != native_debarch():
            cmd.append(f"--arch={debarch}")
        cmd += [SUITE, root, MIRROR]
        log(f"cache: debootstrap {SUITE} {debarch} (once; later runs reuse {target})")
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            tail = result.stdout[-1500:] + result.stderr[-1500:]
            with contextlib.suppress(OSError):
                with open(os.path.join(root, "debootstrap", "debootstrap.log"), encoding="utf-8", errors="replace") as handle:
                    tail += "\n--- debootstrap.log ---\n" + handle.read()[-2000:]
            raise LabError(f"debootstrap {debarch} failed ({result.returncode}):\n{tail}")
        # apt's downloaded .debs are not needed in the image
        run_cmd(["find", os.path.join(root, "var/cache/apt/archives"), "-name", "*.deb", "-delete"], check=False)
        partial = os.path.join(workdir, "rootfs.tar")
        run_cmd(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-cpf", partial, "."], timeout=900)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(LabError):  # a leftover is removed by the next build
            remove_tree(workdir)
    took = time.monotonic() - started
    log(f"cache: {os.path.basename(target)} built in {took:.0f} s")
    return took


def native_debarch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def ensure_caches(log: Log = say) -> dict[str, float]:
    """Build the missing cache tarballs (in parallel); returns seconds per debarch built."""
    missing = sorted({host.debarch for host in HOSTS if not os.path.exists(cache_path(host.debarch))})
    if not missing:
        return {}
    if any(arch != native_debarch() for arch in missing):
        ensure_binfmt()  # once, before the threads
    with concurrent.futures.ThreadPoolExecutor(len(missing)) as pool:
        futures = {arch: pool.submit(build_cache, arch, log) for arch in missing}
        return {arch: future.result() for arch, future in futures.items()}
