"""Processes, locks and commands the lab harness runs on this machine (below
its hosts, images and network modules)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from typing import Callable

from armada.lab.layout import lab_dir

Log = Callable[[str], None]


class LabError(RuntimeError):
    pass


def say(message: str) -> None:
    print(message, flush=True)


def run_cmd(cmd: list[str], check: bool = True, timeout: float | None = 600, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}")
    return result


def remove_tree(path: str) -> None:
    """Delete a folder tree (a host's root filesystem, a cache build) with
    ``rm -rf``, not ``shutil.rmtree``. The test session and pyinfra run with
    gevent's monkey patches, and gevent's ``os.close`` (since 25.8.1) defers
    closing a directory's fd to its event loop: a ``shutil.rmtree`` in a
    thread keeps every folder it visited open until it returns. A served host's
    root (venvs with tens of thousands of folders) then ran the process out of
    file descriptors (EMFILE). ``--one-file-system`` never crosses into a
    mount left inside the tree."""
    if os.path.lexists(path):
        run_cmd(["rm", "-rf", "--one-file-system", "--", path], timeout=900)


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None, comm: str | None = None) -> bool:
    """The process exists, is no zombie and (if given) runs the program `comm`."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return False
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    state = stat[stat.rindex(")") + 2 :].split()[0]
    if state in ("Z", "X"):
        return False
    return comm is None or name == comm[:15]


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def reap(pid: int | None, timeout: float = 5.0) -> None:
    """Wait for a dead process to leave the process table.

    When up() ran in this very process (tests), nspawn and tinyproxy are our
    children and stay zombies until waited for; otherwise PID 1 reaps them.
    """
    if not pid:
        return
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)


@contextlib.contextmanager
def lab_lock():
    """One up/down at a time per lab dir (a second one waits)."""
    os.makedirs(lab_dir(), exist_ok=True)
    with open(os.path.join(lab_dir(), ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def link_exists(name: str) -> bool:
    return run_cmd(["ip", "link", "show", "dev", name], check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")
