"""The raw outputs a host snapshot keeps, and the commands that print them.

One table drives both the live facts (:mod:`armada.facts`) and
``armada snapshot``; :func:`armada.parsers.host.host_facts_from_outputs`
parses them, keyed by these file names.
"""

from __future__ import annotations

# the columns armada asks nvidia-smi for (the CSV parser finds them by header)
NVIDIA_SMI_QUERY = "index,name,memory.total,driver_version,compute_cap,pci.bus_id,persistence_mode"

PCI_LISTING = (
    'for d in /sys/bus/pci/devices/*; do [ -e "$d/vendor" ] && '
    'echo "${d##*/} $(cat "$d/vendor") $(cat "$d/class") $(cat "$d/device")"; done'
)
SNAPSHOT_COMMANDS = {
    "lscpu.txt": "LC_ALL=C lscpu",
    "cpuinfo.txt": "cat /proc/cpuinfo",
    "meminfo.txt": "cat /proc/meminfo",
    "os-release.txt": "cat /etc/os-release",
    "pci.txt": PCI_LISTING,
    "nvidia-smi.csv": f"nvidia-smi --query-gpu={NVIDIA_SMI_QUERY} --format=csv",
    # the python3 the venvs are made with and the C library wheels' manylinux tags are checked against
    "python3.txt": "python3 --version",
    "glibc.txt": "getconf GNU_LIBC_VERSION",
}
