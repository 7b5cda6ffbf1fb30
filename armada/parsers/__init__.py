"""Pure parsers for the raw outputs armada reads from a host, one module per domain.

Every parser takes text a real machine printed (``lscpu``,
``/proc/cpuinfo``, ``/proc/meminfo``, ``/etc/os-release``, a PCI listing,
``nvidia-smi --format=csv``, a JSON line about torch, what a secret-file
check echoed) and returns a frozen dataclass or a plain value. Nothing here
touches a host: the pyinfra facts in :mod:`armada.facts` and the offline
snapshot reader both call these, so each output is parsed in exactly one
place. The commands that print those outputs are in :mod:`armada.commands`.

- :mod:`armada.parsers.cpu`: CPU (ARM/x86 microarchitecture, topology, NUMA) and memory
- :mod:`armada.parsers.system`: the OS and its package manager
- :mod:`armada.parsers.gpu`: PCI devices and nvidia-smi
- :mod:`armada.parsers.torch`: torch and the distributions inside a venv
- :mod:`armada.parsers.host`: a whole host (``HostFacts``) from its raw outputs
- :mod:`armada.parsers.disk`: free space and read-only state
- :mod:`armada.parsers.secrets`: secret and TLS file checks, etcd's auth state
- :mod:`armada.parsers.urls`: what a URL probe says
"""


class ParseError(ValueError):
    """Raised when an output is present but cannot be understood."""
