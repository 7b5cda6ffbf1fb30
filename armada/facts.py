"""pyinfra facts armada reads from each host.

Each fact's ``command()`` prints raw outputs and its ``process()`` hands them
to a pure parser in :mod:`armada.parsers`, the same parsers the offline
snapshot reader uses. Facts are read-only.
"""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

from armada import parsers

_MARK = "@@armada-section "


def sections_command(commands: dict[str, str]) -> str:
    """One shell command printing each output after a marker line.

    A command that is missing or fails prints nothing in its section: an
    absent tool is an empty output, not an error.
    """
    parts = []
    for name, command in commands.items():
        parts.append(f"echo {shlex.quote(_MARK + name)}; ( {command} ) 2>/dev/null || true")
    return "; ".join(parts)


def split_sections(lines: list[str]) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith(_MARK):
            current = sections.setdefault(line[len(_MARK):].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(body) for name, body in sections.items()}


def _process(parse, *args):
    try:
        return parse(*args)
    except parsers.ParseError as exc:
        raise FactProcessError(str(exc)) from exc


class RawSnapshot(FactBase):
    """The raw outputs of :data:`armada.parsers.SNAPSHOT_COMMANDS`, by file name."""

    def command(self):
        return sections_command(parsers.SNAPSHOT_COMMANDS)

    def process(self, output):
        return split_sections(output)


class HostFacts(RawSnapshot):
    """Everything the profile needs, parsed: CPU, memory, OS, PCI, nvidia-smi."""

    def process(self, output) -> parsers.HostFacts:
        return _process(parsers.host_facts_from_outputs, split_sections(output))


class Cpu(FactBase):
    """CPU architecture, microarchitecture, topology, NUMA nodes with CPUs, features."""

    def command(self):
        return sections_command({k: parsers.SNAPSHOT_COMMANDS[k] for k in ("lscpu.txt", "cpuinfo.txt")})

    def process(self, output) -> parsers.CpuInfo:
        sections = split_sections(output)
        return _process(parsers.parse_cpu, sections.get("lscpu.txt"), sections.get("cpuinfo.txt"))


class Memory(FactBase):
    """MemTotal and MemAvailable from /proc/meminfo."""

    def command(self):
        return parsers.SNAPSHOT_COMMANDS["meminfo.txt"]

    def process(self, output) -> parsers.MemInfo:
        return _process(parsers.parse_meminfo, "\n".join(output))


class OsRelease(FactBase):
    """Distribution, version, codename and package manager from /etc/os-release."""

    def command(self):
        return parsers.SNAPSHOT_COMMANDS["os-release.txt"]

    def process(self, output) -> parsers.OsInfo:
        return _process(parsers.parse_os_release, "\n".join(output))


class PciDevices(FactBase):
    """Every PCI function from /sys/bus/pci/devices (no lspci needed)."""

    def command(self):
        return parsers.SNAPSHOT_COMMANDS["pci.txt"]

    @staticmethod
    def default():
        return ()

    def process(self, output):
        return _process(parsers.parse_pci, "\n".join(output))


class NvidiaSmi(FactBase):
    """GPUs as the NVIDIA driver sees them; empty when nvidia-smi is absent."""

    def requires_command(self, *args, **kwargs):
        return "nvidia-smi"

    def command(self):
        return parsers.SNAPSHOT_COMMANDS["nvidia-smi.csv"]

    @staticmethod
    def default():
        return ()

    def process(self, output):
        return _process(parsers.parse_nvidia_smi_csv, "\n".join(output))


class TorchBuild(FactBase):
    """The torch build inside a venv: version, CUDA version, CUDA available, GPUs.

    None when the venv or torch is missing.
    """

    def command(self, venv: str):
        python = shlex.quote(f"{venv}/bin/python")
        return f"if [ -x {python} ]; then {python} -c {shlex.quote(parsers.TORCH_PROBE)} 2>/dev/null || true; fi"

    def process(self, output):
        return _process(parsers.parse_torch_probe, "\n".join(output))


class VenvDistributions(FactBase):
    """Distributions installed in a venv: name -> version (local labels kept).

    Empty when the venv is missing.
    """

    @staticmethod
    def default():
        return {}

    def command(self, venv: str):
        python = shlex.quote(f"{venv}/bin/python")
        probe = shlex.quote(parsers.DISTRIBUTIONS_PROBE)
        return f"if [ -x {python} ]; then {python} -c {probe}; fi"

    def process(self, output):
        return _process(parsers.parse_distributions, "\n".join(output))


class VllmInstalls(FactBase):
    """The vLLM installs under ``<root>/vllm`` (directories), newest first."""

    @staticmethod
    def default():
        return []

    def command(self, root: str):
        folder = shlex.quote(f"{root}/vllm")
        return f"[ -d {folder} ] && find {folder} -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\\n' || true"

    def process(self, output):
        rows = []
        for line in output:
            stamp, _, path = line.partition(" ")
            if path:
                rows.append((float(stamp), path))
        return [path for _, path in sorted(rows, reverse=True)]


class UrlStatus(FactBase):
    """What the host sees when it asks a URL for its headers (HEAD, through
    ``proxy`` when given): a problem sentence, or None when a server answered
    (see parsers.url_problem)."""

    def command(self, url: str, proxy: str | None = None):
        target = shlex.quote(url)
        route = f"--proxy {shlex.quote(proxy)}" if proxy else "--noproxy '*'"
        curl = f"curl -sS -I -o /dev/null -w 'http %{{http_code}}\\n' --max-time 15 {route} {target} 2>&1"
        python = f"python3 -c {shlex.quote(parsers.URL_PROBE_PY)} {target} {shlex.quote(proxy or '')} 2>&1"
        return f"if command -v curl >/dev/null; then {curl}; else {python}; fi; true"

    def process(self, output):
        return parsers.url_problem("\n".join(output))


class ChangedSinceStart(FactBase):
    """What a running unit has not picked up: the given paths modified after
    it last started, and ``daemon-reload`` when systemd says its unit file
    changed on disk. Non-empty after a run was killed between writing a
    config and restarting the service; the next run restarts it."""

    @staticmethod
    def default():
        return []

    def command(self, service: str, paths: list[str]):
        unit = shlex.quote(service)
        quoted = " ".join(shlex.quote(p) for p in paths)
        return (
            f"[ \"$(systemctl show -p NeedDaemonReload --value {unit})\" = yes ] && echo daemon-reload; "
            f"s=$(systemctl show -p ActiveEnterTimestamp --value {unit}); [ -n \"$s\" ] || exit 0; "
            f"t=$(date -d \"$s\" +%s) || exit 0; "
            f"for p in {quoted}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then "
            f"[ \"$(stat -c %Y \"$p\")\" -gt \"$t\" ] && echo \"$p\"; fi; done; true"
        )

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


class DpkgInterrupted(FactBase):
    """The packages a dpkg run left half-done when it was stopped midway (a
    host that lost power, a killed apt): files in /var/lib/dpkg/updates, which
    make every later apt refuse to run ("dpkg was interrupted, you must
    manually run 'dpkg --configure -a'"). Empty when dpkg finished."""

    @staticmethod
    def default():
        return []

    def command(self):
        return "ls -A /var/lib/dpkg/updates 2>/dev/null; true"

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


class DiskSpace(FactBase):
    """Free space and read-only state where ``path`` is (or will be created)."""

    def command(self, path: str):
        return parsers.disk_space_command(path)

    def process(self, output):
        return parsers.parse_disk_space("\n".join(output))


class SecretFile(FactBase):
    """Whether a secret file on the host is usable: a problem sentence or None
    (see parsers.secret_file_problem). The secret itself never leaves the host."""

    def command(self, path: str, service_user: str = "armada"):
        return parsers.secret_file_command(path, service_user)

    def process(self, output):
        return parsers.secret_file_problem("\n".join(output))


class PemFile(FactBase):
    """Whether a TLS file on the host is usable: a problem sentence or None
    (see parsers.pem_file_command). Nothing of the file leaves the host."""

    def command(self, path: str, kind: str, service_user: str = "armada"):
        return parsers.pem_file_command(path, kind, service_user)

    def process(self, output):
        return parsers.secret_file_problem("\n".join(output))


class EtcdAuth(FactBase):
    """Whether the etcd at ``endpoint`` (from the host itself) has auth
    enabled: 'enabled', 'disabled' or 'unreachable' (see parsers.etcd_auth_state).
    ``ca_file``: the CA that etcd's https certificate is checked against."""

    def command(self, endpoint: str, ca_file: str | None = None):
        url = shlex.quote(endpoint.rstrip("/") + "/v3/kv/range")
        return f"{parsers.etcd_curl(ca_file)} -d '{{\"key\":\"YQ==\"}}' {url} 2>&1; true"

    def process(self, output):
        return parsers.etcd_auth_state("\n".join(output))


class DynamoWorkerUnits(FactBase):
    """Dynamo worker instances the host has (enabled, or loaded by systemd), e.g.
    ``armada-dynamo-worker@agg0.service``."""

    @staticmethod
    def default():
        return []

    def command(self):
        return ("{ ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null; "
                "systemctl list-units --all --plain --no-legend 'armada-dynamo-worker@*' 2>/dev/null "
                "| awk '{print $1}'; } | grep '^armada-dynamo-worker@.*\\.service$' | sort -u; true")

    def process(self, output):
        return [line.strip() for line in output if line.strip()]
