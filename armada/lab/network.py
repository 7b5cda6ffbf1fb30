"""The lab network on this machine: a bridge, one network namespace and veth
pair per host, and the egress proxy (tinyproxy) the hosts reach out through."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

from armada.lab.layout import BRIDGE, GATEWAY, PREFIX, PROXY_PORT, PROXY_URL, SUBNET, LabHost, lab_dir
from armada.lab.process import LabError, Log, alive, kill, link_exists, netns_exists, read_pid, reap, run_cmd, say


def proxy_pid_file() -> str:
    return os.path.join(lab_dir(), "tinyproxy.pid")


def ensure_bridge() -> None:
    if not link_exists(BRIDGE):
        run_cmd(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addrs = run_cmd(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
    if f" {GATEWAY}/{PREFIX} " not in addrs:
        run_cmd(["ip", "addr", "add", f"{GATEWAY}/{PREFIX}", "dev", BRIDGE])
    run_cmd(["ip", "link", "set", BRIDGE, "up"])


def setup_host_network(host: LabHost) -> None:
    """A fresh netns with eth0 = the host's address, its veth peer on the bridge."""
    teardown_host_network(host)
    run_cmd(["ip", "netns", "add", host.netns])
    # eth0 gets a fixed MAC: with a random one, a host rebooted while the bridge stays up
    # was unreachable for ~20 s (neighbours kept its old MAC until their entries expired)
    run_cmd(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "address", host.mac, "netns", host.netns])
    run_cmd(["ip", "neigh", "flush", "to", host.address], check=False)
    run_cmd(["ip", "link", "set", host.veth, "master", BRIDGE])
    run_cmd(["ip", "link", "set", host.veth, "up"])
    ns = ["ip", "-n", host.netns]
    run_cmd(ns + ["link", "set", "lo", "up"])
    run_cmd(ns + ["addr", "add", f"{host.address}/{PREFIX}", "dev", "eth0"])
    run_cmd(ns + ["link", "set", "eth0", "up"])
    run_cmd(ns + ["route", "add", "default", "via", GATEWAY])


def teardown_host_network(host: LabHost) -> None:
    if netns_exists(host.netns):
        run_cmd(["ip", "netns", "del", host.netns], check=False)  # takes eth0 and so the pair with it
    if link_exists(host.veth):
        run_cmd(["ip", "link", "del", host.veth], check=False)


# ------------------------------------------------------------------ proxy


def proxy_running() -> bool:
    return alive(read_pid(proxy_pid_file()), "tinyproxy")


def ensure_proxy(log: Log = say) -> None:
    """tinyproxy on GATEWAY:PROXY_PORT for the lab subnet, in the foreground of its own session."""
    if proxy_running():
        return
    conf = os.path.join(lab_dir(), "tinyproxy.conf")
    with open(conf, "w", encoding="utf-8") as handle:
        handle.write(
            "# armada lab egress proxy (written by armada.lab.network; started by hand, no systemd here)\n"
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
    with open(proxy_pid_file(), "w", encoding="ascii") as handle:
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
    pid = read_pid(proxy_pid_file())
    if alive(pid, "tinyproxy"):
        kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not alive(pid):
                break
            time.sleep(0.1)
        kill(pid, signal.SIGKILL)
        reap(pid)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(proxy_pid_file())
