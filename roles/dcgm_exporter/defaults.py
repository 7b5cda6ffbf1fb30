"""Data keys of the dcgm_exporter role (GPU hosts: NVIDIA's DCGM exporter, scraped by the monitoring role).
Its scrape password is the node exporter's (metrics_user, metrics_password_file): one per host."""

from armada.keys import Key, absolute_path, host_address, port

KEYS = (
    Key("dcgm_exporter_listen", str, "127.0.0.1", "Address NVIDIA's DCGM exporter binds: loopback unless a "
        "monitoring host elsewhere scrapes it (then with metrics_password_file, as the node exporter)",
        check=host_address),
    Key("dcgm_exporter_port", int, 9400, "Port of the DCGM exporter", check=port),
    Key("dcgm_cuda", str, "auto", "Which DCGM 4 package: datacenter-gpu-manager-4-cuda12 or -cuda13; 'auto' "
        "follows nvidia_driver_branch (580 and later: CUDA 13)", choices=("auto", "12", "13")),
    Key("dcgm_exporter_collectors", str, None, "A counters CSV ON THE HOST for the exporter (-f) instead of "
        "armada's (files/dcgm-counters.csv: the fields the alerts and README name, exporter 4.x up to 4.8's "
        "names, plus clock events)", nullable=True, check=absolute_path),
)
