"""systemd units on the host: what a running unit has not picked up, Dynamo's worker units."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


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
