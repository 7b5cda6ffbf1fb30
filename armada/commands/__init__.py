"""Shell commands and probe scripts armada runs on a host, one module per domain.

These only build text; their outputs are parsed in :mod:`armada.parsers`
(which may import from here; nothing here imports a parser).

- :mod:`armada.commands.snapshot`: the raw outputs a host snapshot keeps (CPU, memory, OS, PCI, nvidia-smi)
- :mod:`armada.commands.torch`: the probes for torch and the distributions inside a venv
- :mod:`armada.commands.disk`: free space and mount options where a path is
- :mod:`armada.commands.secrets`: checks of a secret or TLS file that never print what it holds
- :mod:`armada.commands.etcd`: curl for etcd's v3 JSON API, its login body, enabling auth
- :mod:`armada.commands.urls`: the python URL probe for hosts without curl
"""
