"""systemd sandboxing of armada's units, decided in one place (a pure
function: :func:`unit_hardening`), rendered into each unit's [Service].

What every service gets: its own unprivileged user (set by its role), no
capabilities, no new privileges, a read-only system (ProtectSystem=strict)
with only its own folders writable, kernel, clock, hostname and cgroups
untouchable, no devices, no namespaces, no realtime, no SUID, native
syscalls of systemd's @system-service set only (others fail with EPERM),
IPv4/IPv6/unix sockets only, other users' processes invisible, files
created 0600/0700 (UMask).

What a service may keep, each with why (the caller says which apply):
- ``jit``: W+X memory (MemoryDenyWriteExecute stays off): Python with
  PyTorch and oneDNN generate machine code at run time (oneDNN's JIT
  kernels, torch.compile); Go services (nats, etcd) do not and get it.
- ``full_proc``: all of /proc (ProcSubset=pid stays off): vLLM and its
  libraries read /proc/cpuinfo, /proc/meminfo and NUMA topology.
- ``netlink``: AF_NETLINK: PyTorch's gloo and NIXL list the host's network
  interfaces (getifaddrs) when they set up their process groups.
- ``host_view``: other users' processes and PID 1's mount table
  (ProtectProc=invisible stays off): Prometheus' node exporter reports the
  host's filesystems from /proc/1/mounts and its process counts; a
  monitoring agent sees the host or reports nothing.
- ``gpu``: NVIDIA's device nodes (/dev/nvidia*): PrivateDevices stays off
  on GPU hosts, where CUDA opens them.

PrivateUsers= is not set: under the lab's qemu-user emulation (the aarch64
control plane) systemd cannot set up a user namespace (217/USER), and
nats/etcd gain little from it beside User= and an empty capability set.
"""

from __future__ import annotations


def unit_hardening(writable: list[str] | tuple[str, ...] = (), jit: bool = False, full_proc: bool = False,
                   netlink: bool = False, gpu: bool = False, host_view: bool = False) -> str:
    """The [Service] sandboxing lines of a unit (one per line, no trailing newline)."""
    families = "AF_UNIX AF_INET AF_INET6" + (" AF_NETLINK" if netlink else "")
    lines = [
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectSystem=strict",
        *(f"ReadWritePaths={path}" for path in writable),
        "ProtectHome=true",
        "PrivateTmp=true",
        "ProtectKernelTunables=true",
        "ProtectKernelModules=true",
        "ProtectKernelLogs=true",
        "ProtectControlGroups=true",
        "ProtectClock=true",
        "ProtectHostname=true",
        *([] if host_view else ["ProtectProc=invisible"]),
        "RestrictNamespaces=true",
        "RestrictRealtime=true",
        "RestrictSUIDSGID=true",
        "LockPersonality=true",
        "RemoveIPC=true",
        f"RestrictAddressFamilies={families}",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
        "UMask=0077",
    ]
    if not gpu:
        lines.append("PrivateDevices=true")
    if not jit:
        lines.append("MemoryDenyWriteExecute=true")
    if not full_proc:
        lines.append("ProcSubset=pid")
    return "\n".join(lines)
