"""pyinfra facts armada reads from each host, one module per domain.

Each fact's ``command()`` prints raw outputs (most commands come from
:mod:`armada.commands`) and its ``process()`` hands them to a pure parser in
:mod:`armada.parsers`, the same parsers the offline snapshot reader uses.
Facts are read-only.

- :mod:`armada.facts.base`: printing several outputs in one command, and splitting them again
- :mod:`armada.facts.host`: ``RawSnapshot`` (the raw outputs) and ``HostSnapshot`` (parsed)
- :mod:`armada.facts.cpu`: ``Cpu``, ``Memory``
- :mod:`armada.facts.system`: ``OsRelease``, ``DpkgInterrupted``
- :mod:`armada.facts.services`: ``ChangedSinceStart``, ``DynamoWorkerUnits`` (systemd units)
- :mod:`armada.facts.gpu`: ``PciDevices``, ``NvidiaSmi``
- :mod:`armada.facts.torch`: ``VenvTorch``, ``VenvDistributions``, ``VllmInstalls``
- :mod:`armada.facts.disk`: ``FreeSpace``
- :mod:`armada.facts.secrets`: ``SecretFile``, ``PemFile``, ``EtcdAuth``
- :mod:`armada.facts.urls`: ``UrlStatus``
"""
