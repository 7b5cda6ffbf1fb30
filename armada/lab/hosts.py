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
    hosts/<name>/rootfs            a host's root filesystem (fresh from the cache; kept by power_on)
    hosts/<name>/console.log       its console (nspawn's stdout/stderr)
    hosts/<name>/nspawn.pid        the systemd-nspawn process

Its images are armada.lab.images, its network and proxy armada.lab.network, the
processes and locks below them armada.lab.process. Needs root, debootstrap,
qemu-user-static, binfmt-support, systemd-container,
tinyproxy and iproute2 on the machine running it. Stdlib + paramiko only.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import secrets
import subprocess
import sys
import time

import paramiko

from armada.lab.images import ensure_binfmt, ensure_caches

# the lab's layout: callers (inventories, tests) reach GATEWAY, PROXY_PORT,
# PROXY_URL and BRIDGE through this module too
from armada.lab.layout import (
    BRIDGE,
    GATEWAY,
    HOST_SECRETS_DIR,
    HOSTS,
    HOSTS_BY_NAME,
    PROXY_PORT,
    PROXY_URL,
    LIGHT_MAX,
    LabHost,
    all_hosts,
    cache_path,
    host_dir,
    key_path,
    known_hosts_path,
    lab_dir,
    lab_host,
    light_count_path,
    light_hosts,
    rootfs_path,
)
from armada.lab.network import ensure_bridge, ensure_proxy, setup_host_network, stop_proxy, teardown_host_network
from armada.lab.process import (
    LabError,
    Log,
    alive,
    kill,
    lab_lock,
    link_exists,
    netns_exists,
    read_pid,
    reap,
    remove_tree,
    run_cmd,
    say,
)
from armada.lab.tls import host_files


def _pid_file(host: LabHost) -> str:
    return os.path.join(host_dir(host), "nspawn.pid")


# ---------------------------------------------------------------- lab key


def ensure_key(log: Log = say) -> str:
    path = key_path()
    if not os.path.exists(path):
        os.makedirs(lab_dir(), exist_ok=True)
        run_cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "armada-lab", "-f", path])
        log(f"key: generated {path}")
    return path


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
    run_cmd(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-xpf", cache_path(host.debarch)], timeout=600)

    _write(f"{root}/etc/hostname", f"{host.name}\n")
    # a host's own name resolves to its lab address (services that bind to their
    # name must be reachable from the other host), the other lab hosts likewise
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{other.address} {other.name}" for other in all_hosts()]
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
        run_cmd(["ssh-keygen", "-A", "-f", root])
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
    for path, (text, mode) in lab_files(host.name).items():
        _write(f"{root}{path}", text, mode)
    # machine-id: empty -> nspawn hands the container a fresh transient one per boot
    _write(f"{root}/etc/machine-id", "")


# Secrets the lab's hosts hold, as a cloud's secret delivery would leave them:
# one value per lab (made once, kept in the lab dir, 0600), written into every
# host's root filesystem as root-only files at HOST_SECRETS_DIR/<name>.
LAB_SECRETS = ("nats-password", "etcd-password", "etcd-client-password", "vllm-api-key", "metrics-password")
# one secret in a second file, for a second service user on the same host (the node exporter reads
# metrics-password, Prometheus on the monitoring host its own copy)
LAB_SECRET_COPIES = {"metrics-scrape-password": "metrics-password"}


def lab_files(host_name: str) -> dict[str, tuple[str, int]]:
    """Every file `armada lab up` writes into a host: the lab's secrets (root's, 0600, until the base role
    hands each to its service user) and its TLS files; path -> (text, mode)."""
    found = {host_secret_path(name): (lab_secret(name) + "\n", 0o600) for name in LAB_SECRETS}
    found.update({host_secret_path(copy): (lab_secret(name) + "\n", 0o600) for copy, name in LAB_SECRET_COPIES.items()})
    found.update(host_files(host_name))
    return found


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
    for host in all_hosts():
        if os.path.isdir(f"{rootfs_path(host)}/etc/ssh"):
            lines += _host_pubkeys(host)
    _write(known_hosts_path(), "\n".join(lines) + "\n", 0o600)


# ------------------------------------------------------------------- boot


def _nspawn_pid(host: LabHost) -> int | None:
    pid = read_pid(_pid_file(host))
    return pid if alive(pid, "systemd-nspawn") else None


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


def refresh_lab_files(host: LabHost) -> None:
    """Write the files `armada lab up` puts into each host (lab_files: its secrets and TLS files) into a
    host that is already up, as root's files, skipping those already there at the same size: a lab
    brought up before a file existed (a client certificate, a new host's own, a new secret) gets it this
    way."""
    client = ssh_client(host)
    try:
        sftp = client.open_sftp()
        for path, (text, mode) in lab_files(host.name).items():
            try:
                if sftp.stat(path).st_size == len(text.encode()):
                    continue
            except FileNotFoundError:
                pass
            with sftp.open(path, "w") as handle:
                handle.write(text)
            sftp.chmod(path, mode)
        sftp.close()
    finally:
        client.close()


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


def wait_ready(host: LabHost, started: float, log: Log = say) -> dict:
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
    if netns_exists(host.netns):
        out = run_cmd(["ip", "netns", "pids", host.netns], check=False).stdout
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
    return {pid for pid in pids if alive(pid)}


def stop_host(host: LabHost, timeout: float = 30.0) -> None:
    pid = read_pid(_pid_file(host))
    if alive(pid, "systemd-nspawn"):
        # SIGKILL: SIGTERM left the emulated host in the emergency shell (LAB.md)
        kill(pid)
    deadline = time.monotonic() + timeout
    while True:
        left = _leftover_pids(host)
        if pid and alive(pid):
            left.add(pid)
        if not left:
            break
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: processes left after stop: {sorted(left)}")
        for other in left:
            kill(other)
        time.sleep(0.2)
    reap(pid)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_pid_file(host))


# --------------------------------------------------------------- the API


def up(log: Log = say, keep_disks: bool = False, light: int | None = None) -> dict:
    """Bring the lab up; running hosts are left alone. A host that is not
    running gets a fresh root filesystem from the cache, or, with
    ``keep_disks``, boots the one it has (as a machine whose power came back).
    ``light``: how many light hosts the lab has from now on (None: as many as
    it had); light hosts beyond that number are removed. Returns timings."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, nspawn)")
    if light is not None and not 0 <= light <= LIGHT_MAX:
        raise LabError(f"--light {light}: the lab has room for 0 to {LIGHT_MAX} light hosts")
    timings: dict = {}
    t0 = time.monotonic()
    with lab_lock():
        if light is not None:
            for extra in light_hosts()[light:]:
                _remove(extra, log)
            _write(light_count_path(), f"{light}\n")
        timings["cache_build_s"] = ensure_caches(log)
        ensure_key(log)
        if any(host.emulated for host in HOSTS):
            ensure_binfmt()
        ensure_bridge()
        ensure_proxy(log)
        to_boot = []
        for host in all_hosts():
            if is_running(host):
                log(f"{host.name}: already running (pid {_nspawn_pid(host)})")
                continue
            stop_host(host)  # stale leftovers of a crashed run
            setup_host_network(host)
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


def _remove(host: LabHost, log: Log) -> None:
    """Stop a host and remove its network and root filesystem."""
    was = is_running(host)
    stop_host(host)
    teardown_host_network(host)
    remove_tree(rootfs_path(host))
    log(f"{host.name}: {'stopped' if was else 'not running'}, removed")


def power_on(host: LabHost, log: Log = say) -> dict:
    """Boot ``host`` from its own disk, as it was when it stopped (a machine
    that lost power and came back): nothing is reset. The lab's other stopped
    hosts come back the same way (up() boots every host not running); a host
    with no disk yet gets a fresh one."""
    if is_running(host):
        log(f"{host.name}: already running")
    return up(log, keep_disks=True)


def down(log: Log = say) -> float:
    """Stop hosts, remove netns/veths/bridge/rootfs copies, stop the proxy; keep cache and key."""
    t0 = time.monotonic()
    with lab_lock():
        for host in all_hosts():
            _remove(host, log)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(light_count_path())
        if link_exists(BRIDGE):
            run_cmd(["ip", "link", "del", BRIDGE])
        stop_proxy()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(known_hosts_path())
    took = time.monotonic() - t0
    log(f"lab down in {took:.1f} s")
    return took


def reset(host: LabHost, log: Log = say) -> dict:
    """Give one host a fresh root filesystem (a new, never-deployed machine) and boot it."""
    with lab_lock():
        stop_host(host)
        teardown_host_network(host)
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
            "ssh_hostname": lab_host(name).address,
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
    for host in all_hosts():
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
