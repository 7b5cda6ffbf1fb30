"""The local lab harness: three real Debian bookworm hosts booted with systemd-nspawn.

* ``armada-cp``     aarch64 (arm64 rootfs, run under qemu-user-static), 10.213.0.11
* ``armada-serve``  x86_64 (native amd64 rootfs),                        10.213.0.12
* ``armada-serve2`` x86_64 (native amd64 rootfs),                        10.213.0.13

Two serving hosts of one arch: a rolling upgrade has a second host to stop
before, and a vLLM build made on one host has another to be installed on.

Each host is a full systemd boot in its own network namespace, with a veth
pair whose root-side end sits on the bridge ``armadabr0`` (10.213.0.1/24).
The hosts reach nothing but the bridge: an HTTP proxy (tinyproxy, started by
hand because this machine has no systemd as PID 1) listens on
10.213.0.1:8888 for their egress. Proxy and CA settings inside the hosts are
*not* made here: the product's ``base`` role does that from inventory data.

Everything lives under the lab dir (env ``ARMADA_LAB_DIR``, default
``/var/tmp/armada-lab``)::

    cache/bookworm-<debarch>.tar   root filesystems, built once by debootstrap
    id_ed25519{,.pub}              the lab key pair (root login on every host)
    known_hosts                    written by up() from the hosts' own keys
    tinyproxy.conf / .pid / .log   the egress proxy
    hosts/<name>/rootfs            a host's root filesystem (fresh per boot)
    hosts/<name>/console.log       its console (nspawn's stdout/stderr)
    hosts/<name>/nspawn.pid        the systemd-nspawn process

Needs root, debootstrap, qemu-user-static, binfmt-support, systemd-container,
tinyproxy and iproute2 on the machine running it. Stdlib + paramiko only.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable

import paramiko

from armada.lab.layout import (
    BRIDGE,
    GATEWAY,
    HOST_SECRETS_DIR,
    HOSTS,
    HOSTS_BY_NAME,
    INCLUDE,
    MIRROR,
    PREFIX,
    PROXY_PORT,
    PROXY_URL,
    SUBNET,
    SUITE,
    LabHost,
    cache_path,
    host_dir,
    key_path,
    known_hosts_path,
    lab_dir,
    rootfs_path,
)
from armada.lab.tls import host_files

Log = Callable[[str], None]


class LabError(RuntimeError):
    pass


def _print(message: str) -> None:
    print(message, flush=True)


def _pid_file(host: LabHost) -> str:
    return os.path.join(host_dir(host), "nspawn.pid")


def _proxy_pid_file() -> str:
    return os.path.join(lab_dir(), "tinyproxy.pid")


# ------------------------------------------------------------------- helpers


def _run(cmd: list[str], check: bool = True, timeout: float | None = 600, **kw) -> subprocess.CompletedProcess:
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
        _run(["rm", "-rf", "--one-file-system", "--", path], timeout=900)


def _read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None, comm: str | None = None) -> bool:
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


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _reap(pid: int | None, timeout: float = 5.0) -> None:
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
def _lab_lock():
    """One up/down at a time per lab dir (a second one waits)."""
    os.makedirs(lab_dir(), exist_ok=True)
    with open(os.path.join(lab_dir(), ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def _netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


# ------------------------------------------------------ emulation and cache


def ensure_binfmt() -> None:
    """aarch64 binaries run through qemu-user-static (binfmt_misc, F flag)."""
    if not os.path.exists("/proc/sys/fs/binfmt_misc/register"):
        _run(["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"])
    _run(["update-binfmts", "--enable", "qemu-aarch64"], check=False)  # "already enabled" is not an error
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


def build_cache(debarch: str, log: Log = _print) -> float:
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
    if debarch != _native_debarch():
        ensure_binfmt()
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix=f".build-{debarch}-", dir=cache)
    try:
        root = os.path.join(workdir, "rootfs")
        cmd = ["debootstrap", "--variant=minbase", f"--include={INCLUDE}"]
        if debarch != _native_debarch():
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
        _run(["find", os.path.join(root, "var/cache/apt/archives"), "-name", "*.deb", "-delete"], check=False)
        partial = os.path.join(workdir, "rootfs.tar")
        _run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-cpf", partial, "."], timeout=900)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(LabError):  # a leftover is removed by the next build
            remove_tree(workdir)
    took = time.monotonic() - started
    log(f"cache: {os.path.basename(target)} built in {took:.0f} s")
    return took


def _native_debarch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def ensure_caches(log: Log = _print) -> dict[str, float]:
    """Build the missing cache tarballs (in parallel); returns seconds per debarch built."""
    missing = sorted({host.debarch for host in HOSTS if not os.path.exists(cache_path(host.debarch))})
    if not missing:
        return {}
    if any(arch != _native_debarch() for arch in missing):
        ensure_binfmt()  # once, before the threads
    with concurrent.futures.ThreadPoolExecutor(len(missing)) as pool:
        futures = {arch: pool.submit(build_cache, arch, log) for arch in missing}
        return {arch: future.result() for arch, future in futures.items()}


# ---------------------------------------------------------------- lab key


def ensure_key(log: Log = _print) -> str:
    path = key_path()
    if not os.path.exists(path):
        os.makedirs(lab_dir(), exist_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "armada-lab", "-f", path])
        log(f"key: generated {path}")
    return path


# ---------------------------------------------------------------- network


def ensure_bridge() -> None:
    if not _link_exists(BRIDGE):
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addrs = _run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
    if f" {GATEWAY}/{PREFIX} " not in addrs:
        _run(["ip", "addr", "add", f"{GATEWAY}/{PREFIX}", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])


def _setup_host_network(host: LabHost) -> None:
    """A fresh netns with eth0 = the host's address, its veth peer on the bridge."""
    _teardown_host_network(host)
    _run(["ip", "netns", "add", host.netns])
    # eth0 gets a fixed MAC: with a random one, a host rebooted while the bridge stays up
    # was unreachable for ~20 s (neighbours kept its old MAC until their entries expired)
    _run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "address", host.mac, "netns", host.netns])
    _run(["ip", "neigh", "flush", "to", host.address], check=False)
    _run(["ip", "link", "set", host.veth, "master", BRIDGE])
    _run(["ip", "link", "set", host.veth, "up"])
    ns = ["ip", "-n", host.netns]
    _run(ns + ["link", "set", "lo", "up"])
    _run(ns + ["addr", "add", f"{host.address}/{PREFIX}", "dev", "eth0"])
    _run(ns + ["link", "set", "eth0", "up"])
    _run(ns + ["route", "add", "default", "via", GATEWAY])


def _teardown_host_network(host: LabHost) -> None:
    if _netns_exists(host.netns):
        _run(["ip", "netns", "del", host.netns], check=False)  # takes eth0 and so the pair with it
    if _link_exists(host.veth):
        _run(["ip", "link", "del", host.veth], check=False)


# ------------------------------------------------------------------ proxy


def _proxy_running() -> bool:
    return _alive(_read_pid(_proxy_pid_file()), "tinyproxy")


def ensure_proxy(log: Log = _print) -> None:
    """tinyproxy on GATEWAY:PROXY_PORT for the lab subnet, in the foreground of its own session."""
    if _proxy_running():
        return
    conf = os.path.join(lab_dir(), "tinyproxy.conf")
    with open(conf, "w", encoding="utf-8") as handle:
        handle.write(
            "# armada lab egress proxy (written by armada.lab.hosts; started by hand, no systemd here)\n"
            "User nobody\nGroup nogroup\n"
            f"Port {PROXY_PORT}\nListen {GATEWAY}\n"
            f"Allow {SUBNET}\n"
            "Timeout 600\nMaxClients 64\n"
            "LogLevel Notice\n"
            "ConnectPort 443\n"
            "DisableViaHeader Yes\n"
        )
    logfile = open(os.path.join(lab_dir(), "tinyproxy.log"), "ab")
    proc = subprocess.Popen(
        ["tinyproxy", "-d", "-c", conf],
        stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True,
    )
    logfile.close()
    with open(_proxy_pid_file(), "w", encoding="ascii") as handle:
        handle.write(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(f"tinyproxy exited ({proc.returncode}); see {lab_dir()}/tinyproxy.log")
        with contextlib.suppress(OSError), socket.create_connection((GATEWAY, PROXY_PORT), timeout=1):
            log(f"proxy: tinyproxy listening on {PROXY_URL} (pid {proc.pid})")
            return
        time.sleep(0.2)
    raise LabError(f"tinyproxy did not listen on {GATEWAY}:{PROXY_PORT} within 10 s")


def stop_proxy() -> None:
    pid = _read_pid(_proxy_pid_file())
    if _alive(pid, "tinyproxy"):
        _kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
        _kill(pid, signal.SIGKILL)
        _reap(pid)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_proxy_pid_file())


# ----------------------------------------------------------------- rootfs

# Units that fail or make no sense in a container with its network set from outside.
_MASK = (
    "systemd-networkd.service",
    "systemd-networkd.socket",
    "systemd-networkd-wait-online.service",
    "systemd-resolved.service",
    "systemd-timesyncd.service",
    "apt-daily.timer",  # would run apt without the proxy the base role sets up later
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "getty@tty1.service",  # nspawn gives console-getty; tty1 does not exist
    "serial-getty@ttyS0.service",
)


def _write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def prepare_rootfs(host: LabHost) -> None:
    """Extract the cache and make the fix-ups a minbase Debian needs under nspawn."""
    root = rootfs_path(host)
    remove_tree(root)
    os.makedirs(root)
    _run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-xpf", cache_path(host.debarch)], timeout=600)

    _write(f"{root}/etc/hostname", f"{host.name}\n")
    # a host's own name resolves to its lab address (services that bind to their
    # name must be reachable from the other host), the other lab hosts likewise
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{other.address} {other.name}" for other in HOSTS]
    _write(f"{root}/etc/hosts", "\n".join(lines) + "\n")

    # root's key login
    with open(key_path() + ".pub", encoding="utf-8") as handle:
        pub = handle.read()
    os.makedirs(f"{root}/root/.ssh", mode=0o700, exist_ok=True)
    os.chmod(f"{root}/root/.ssh", 0o700)
    _write(f"{root}/root/.ssh/authorized_keys", pub, 0o600)
    _write(
        f"{root}/etc/ssh/sshd_config.d/armada-lab.conf",
        "# armada lab: root logs in with the lab key only\n"
        "Port 22\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUseDNS no\n",
    )
    # host keys: debootstrap's openssh-server postinst normally makes them
    if not any(name.startswith("ssh_host_") and name.endswith("_key") for name in os.listdir(f"{root}/etc/ssh")):
        _run(["ssh-keygen", "-A", "-f", root])
    # pam_loginuid cannot always write /proc/self/loginuid in a container: don't fail the session
    pam_sshd = f"{root}/etc/pam.d/sshd"
    if os.path.exists(pam_sshd):
        with open(pam_sshd, encoding="utf-8") as handle:
            text = handle.read()
        _write(pam_sshd, text.replace("session    required     pam_loginuid.so", "session    optional     pam_loginuid.so"))

    # masks: a symlink to /dev/null in /etc/systemd/system
    for unit in _MASK:
        link = f"{root}/etc/systemd/system/{unit}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        os.symlink("/dev/null", link)
    if host.emulated:
        _drop_credentials(root)
    # the folder lets the service user through (0711); each file is root's 0600 until the base role hands it over
    os.makedirs(f"{root}{HOST_SECRETS_DIR}", exist_ok=True)
    os.chmod(f"{root}{HOST_SECRETS_DIR}", 0o711)
    for name in LAB_SECRETS:
        _write(f"{root}{host_secret_path(name)}", lab_secret(name) + "\n", 0o600)
    for path, (text, mode) in host_files(host.name).items():
        _write(f"{root}{path}", text, mode)
    # machine-id: empty -> nspawn hands the container a fresh transient one per boot
    _write(f"{root}/etc/machine-id", "")


# Secrets the lab's hosts hold, as a cloud's secret delivery would leave them:
# one value per lab (made once, kept in the lab dir, 0600), written into every
# host's root filesystem as root-only files at HOST_SECRETS_DIR/<name>.
LAB_SECRETS = ("nats-password", "etcd-password")


def lab_secret(name: str) -> str:
    """The lab's value of a secret (tests grep output and journals for it)."""
    folder = os.path.join(lab_dir(), "secrets")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(24) + "\n")
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def host_secret_path(name: str) -> str:
    return f"{HOST_SECRETS_DIR}/{name}"


def _drop_credentials(root: str) -> None:
    """Under qemu-user, systemd cannot set up a unit's credentials (the unit fails with
    243/CREDENTIALS, "Failed to set up credentials: Invalid argument": a mount syscall
    qemu does not emulate). systemd-tmpfiles-setup, -setup-dev and systemd-sysusers
    only load optional credentials, so reset LoadCredential= for every such unit."""
    unit_dir = f"{root}/lib/systemd/system"
    for name in sorted(os.listdir(unit_dir)):
        if not name.endswith(".service") or os.path.islink(os.path.join(unit_dir, name)):
            continue
        with open(os.path.join(unit_dir, name), encoding="utf-8", errors="replace") as handle:
            if not any(line.startswith("LoadCredential=") for line in handle):
                continue
        _write(
            f"{root}/etc/systemd/system/{name}.d/armada-lab-qemu.conf",
            "# armada lab: credentials cannot be set up under qemu-user emulation\n[Service]\nLoadCredential=\n",
        )


def _host_pubkeys(host: LabHost) -> list[str]:
    etc_ssh = f"{rootfs_path(host)}/etc/ssh"
    keys = []
    for name in sorted(os.listdir(etc_ssh)):
        if name.startswith("ssh_host_") and name.endswith("_key.pub"):
            with open(os.path.join(etc_ssh, name), encoding="utf-8") as handle:
                kind, blob = handle.read().split()[:2]
            keys.append(f"{host.address} {kind} {blob}")
            keys.append(f"{host.name} {kind} {blob}")
    return keys


def write_known_hosts() -> None:
    """known_hosts from the keys in each running host's rootfs (they change when a cache is rebuilt)."""
    lines = []
    for host in HOSTS:
        if os.path.isdir(f"{rootfs_path(host)}/etc/ssh"):
            lines += _host_pubkeys(host)
    _write(known_hosts_path(), "\n".join(lines) + "\n", 0o600)


# ------------------------------------------------------------------- boot


def _nspawn_pid(host: LabHost) -> int | None:
    pid = _read_pid(_pid_file(host))
    return pid if _alive(pid, "systemd-nspawn") else None


def is_running(host: LabHost) -> bool:
    return _nspawn_pid(host) is not None


def boot(host: LabHost) -> int:
    os.makedirs(host_dir(host), exist_ok=True)
    console = open(os.path.join(host_dir(host), "console.log"), "ab")
    console.write(f"\n=== armada lab: boot {host.name} at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
    console.flush()
    cmd = [
        "systemd-nspawn", "--register=no", "--keep-unit", "--quiet",
        "-D", rootfs_path(host), "-b",
        f"--network-namespace-path=/run/netns/{host.netns}",
        "-M", host.name,
        "--console=read-only",  # stdin is no tty: the console goes to console.log
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, start_new_session=True)
    console.close()
    _write(_pid_file(host), f"{proc.pid}\n")
    return proc.pid


def ssh_client(host: LabHost, timeout: float = 10.0):
    client = paramiko.SSHClient()
    if os.path.exists(known_hosts_path()):
        client.load_host_keys(known_hosts_path())
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        host.address, port=22, username="root", key_filename=key_path(),
        timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
        look_for_keys=False, allow_agent=False,
    )
    return client


def ssh_exec(host: LabHost, command: str, timeout: float = 60.0) -> tuple[int, str, str]:
    client = ssh_client(host)
    try:
        _, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        return stdout.channel.recv_exit_status(), out, err
    finally:
        client.close()


def _console_tail(host: LabHost, chars: int = 3000) -> str:
    with contextlib.suppress(OSError):
        with open(os.path.join(host_dir(host), "console.log"), "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - chars))
            return handle.read().decode(errors="replace")
    return ""


def wait_ready(host: LabHost, started: float, log: Log = _print) -> dict:
    """SSH answers (key auth) and systemd reached running/degraded; returns timings."""
    deadline = started + host.boot_timeout
    last_error = "no attempt"
    ssh_at = None
    while time.monotonic() < deadline:
        if not is_running(host):
            raise LabError(f"{host.name}: systemd-nspawn exited during boot; console:\n{_console_tail(host)}")
        try:
            code, out, _ = ssh_exec(host, "true", timeout=20)
            if code == 0:
                ssh_at = time.monotonic()
                break
        except Exception as exc:  # refused / timeout / banner while sshd starts
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(1)
    if ssh_at is None:
        raise LabError(f"{host.name}: no SSH within {host.boot_timeout:.0f} s ({last_error}); console:\n{_console_tail(host)}")
    log(f"{host.name}: ssh answers {ssh_at - started:.1f} s after boot")
    left = max(5.0, deadline - time.monotonic())
    code, out, err = ssh_exec(host, f"timeout {left:.0f} systemctl is-system-running --wait", timeout=left + 10)
    state = out.strip() or err.strip()
    ready_at = time.monotonic()
    failed = []
    if state == "degraded":
        _, units, _ = ssh_exec(host, "systemctl list-units --failed --no-legend --plain | cut -d' ' -f1")
        failed = units.split()
        log(f"{host.name}: system degraded, failed units: {', '.join(failed) or '?'}")
    elif state != "running":
        raise LabError(f"{host.name}: systemctl is-system-running says {state!r} ({code})")
    log(f"{host.name}: systemd {state} {ready_at - started:.1f} s after boot")
    return {"ssh_s": ssh_at - started, "ready_s": ready_at - started, "state": state, "failed_units": failed}


# ------------------------------------------------------------- processes


def _leftover_pids(host: LabHost) -> set[int]:
    """Processes of a host: in its netns, or with their root inside its rootfs."""
    pids: set[int] = set()
    if _netns_exists(host.netns):
        out = _run(["ip", "netns", "pids", host.netns], check=False).stdout
        pids |= {int(p) for p in out.split() if p.isdigit()}
    root = os.path.realpath(rootfs_path(host))
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{entry}/root")
            if link == root or link.startswith(root + "/"):
                pids.add(int(entry))
    pids.discard(os.getpid())
    return {pid for pid in pids if _alive(pid)}


def stop_host(host: LabHost, timeout: float = 30.0) -> None:
    pid = _read_pid(_pid_file(host))
    if _alive(pid, "systemd-nspawn"):
        # SIGKILL: SIGTERM left the emulated host in the emergency shell (LAB.md)
        _kill(pid)
    deadline = time.monotonic() + timeout
    while True:
        left = _leftover_pids(host)
        if pid and _alive(pid):
            left.add(pid)
        if not left:
            break
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: processes left after stop: {sorted(left)}")
        for other in left:
            _kill(other)
        time.sleep(0.2)
    _reap(pid)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_pid_file(host))


# --------------------------------------------------------------- the API


def up(log: Log = _print, keep_disks: bool = False) -> dict:
    """Bring the lab up; running hosts are left alone. A host that is not
    running gets a fresh root filesystem from the cache, or, with
    ``keep_disks``, boots the one it has (as a machine whose power came back).
    Returns timings."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, nspawn)")
    timings: dict = {}
    t0 = time.monotonic()
    with _lab_lock():
        timings["cache_build_s"] = ensure_caches(log)
        ensure_key(log)
        if any(host.emulated for host in HOSTS):
            ensure_binfmt()
        ensure_bridge()
        ensure_proxy(log)
        to_boot = []
        for host in HOSTS:
            if is_running(host):
                log(f"{host.name}: already running (pid {_nspawn_pid(host)})")
                continue
            stop_host(host)  # stale leftovers of a crashed run
            _setup_host_network(host)
            to_boot.append(host)
        to_prepare = [host for host in to_boot if not (keep_disks and _has_disk(host))]
        if to_prepare:  # extracting the caches is the slow part of a cached up: in parallel
            with concurrent.futures.ThreadPoolExecutor(len(to_prepare)) as pool:
                for future in [pool.submit(prepare_rootfs, host) for host in to_prepare]:
                    future.result()
        write_known_hosts()
        starts = {}
        for host in to_boot:
            starts[host.name] = time.monotonic()
            pid = boot(host)
            log(f"{host.name}: booting ({host.arch}{', emulated' if host.emulated else ''}, {host.address}, pid {pid})")
        hosts_timing = {}
        errors = []
        if to_boot:
            with concurrent.futures.ThreadPoolExecutor(len(to_boot)) as pool:
                futures = {host.name: pool.submit(wait_ready, host, starts[host.name], log) for host in to_boot}
                for name, future in futures.items():
                    try:
                        hosts_timing[name] = future.result()
                    except Exception as exc:
                        errors.append(f"{exc}")
        if errors:
            raise LabError("\n".join(errors))
        timings["hosts"] = hosts_timing
    timings["up_s"] = time.monotonic() - t0
    log(f"lab up in {timings['up_s']:.1f} s")
    return timings


def _has_disk(host: LabHost) -> bool:
    """The host's root filesystem is there (prepare_rootfs writes /etc/hostname last of the early files)."""
    return os.path.isfile(os.path.join(rootfs_path(host), "etc", "hostname"))


def power_on(host: LabHost, log: Log = _print) -> dict:
    """Boot a stopped host from its own disk, as it was when it stopped (a
    machine that lost power and came back): nothing is reset. A host with no
    disk yet gets a fresh one."""
    return up(log, keep_disks=True)


def down(log: Log = _print) -> float:
    """Stop hosts, remove netns/veths/bridge/rootfs copies, stop the proxy; keep cache and key."""
    t0 = time.monotonic()
    with _lab_lock():
        for host in HOSTS:
            was = is_running(host)
            stop_host(host)
            _teardown_host_network(host)
            remove_tree(rootfs_path(host))
            log(f"{host.name}: {'stopped' if was else 'not running'}, removed")
        if _link_exists(BRIDGE):
            _run(["ip", "link", "del", BRIDGE])
        stop_proxy()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(known_hosts_path())
    took = time.monotonic() - t0
    log(f"lab down in {took:.1f} s")
    return took


def reset(host: LabHost, log: Log = _print) -> dict:
    """Give one host a fresh root filesystem (a new, never-deployed machine) and boot it."""
    with _lab_lock():
        stop_host(host)
        _teardown_host_network(host)
        remove_tree(rootfs_path(host))
    log(f"{host.name}: reset")
    return up(log)


def run_inside(host: LabHost, argv: list[str], timeout: float = 3600) -> subprocess.CompletedProcess:
    """Run a command inside a host as its own root would, with no SSH: in the
    namespaces of the host's PID 1 (what cloud-init's runcmd does there)."""
    pid = _nspawn_pid(host)
    if pid is None:
        raise LabError(f"{host.name}: not running")
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    if not children:
        raise LabError(f"{host.name}: nspawn {pid} has no init process")
    env = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
           "LANG=C.UTF-8"]
    return subprocess.run(["nsenter", f"--target={children[0]}", "--all", "--root", "--wd", *env, *argv],
                          capture_output=True, text=True, timeout=timeout)


def inventory_entry(name: str) -> tuple[str, dict]:
    """A pyinfra inventory entry for a lab host: its address, the lab key and known_hosts."""
    return (
        name,
        {
            "ssh_hostname": HOSTS_BY_NAME[name].address,
            "ssh_user": "root",
            "ssh_key": key_path(),
            "ssh_known_hosts_file": known_hosts_path(),
            # Lab opt-out: the hosts' keys change whenever the rootfs cache is rebuilt.
            # `armada lab up` writes known_hosts from the hosts' own keys, so a
            # pinned key still wins; accept-new only covers a missing entry.
            "ssh_strict_host_key_checking": "accept-new",
        },
    )


def status() -> list[dict]:
    rows = []
    for host in HOSTS:
        pid = _nspawn_pid(host)
        ssh_ok = False
        if pid:
            with contextlib.suppress(Exception):
                ssh_ok = ssh_exec(host, "true", timeout=10)[0] == 0
        rows.append({
            "name": host.name, "arch": host.arch, "address": host.address,
            "running": pid is not None, "pid": pid, "ssh": ssh_ok,
        })
    return rows


if __name__ == "__main__":  # python -m armada.lab.hosts up|down|status
    action = sys.argv[1] if len(sys.argv) > 1 else "status"
    if action == "up":
        print(up())
    elif action == "down":
        down()
    else:
        for row in status():
            print(row)
