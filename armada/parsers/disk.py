"""Free space and read-only state where a path is, from
:func:`armada.commands.disk.disk_space_command`'s output."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiskSpace:
    existing: str  # the path itself, or its nearest existing parent
    available_bytes: int
    read_only: bool


def parse_disk_space(output: str) -> DiskSpace | None:
    existing, available, read_only = None, None, False
    for line in output.splitlines():
        if line.startswith("path "):
            existing = line[5:].strip()
        elif line.startswith("options "):
            read_only = "ro" in line[8:].strip().split(",")
        elif line.strip() and available is None:
            fields = line.split()
            if len(fields) >= 6 and fields[3].isdigit():
                available = int(fields[3]) * 1024
    if existing is None or available is None:
        return None
    return DiskSpace(existing, available, read_only)


def disk_problem(space: DiskSpace | None, path: str, needed: int | None) -> str | None:
    """Why ``path`` cannot take ``needed`` more bytes; None when it can."""
    if space is None:
        return None
    if space.read_only:
        return f"{space.existing} is on a read-only filesystem"
    if needed and space.available_bytes < needed:
        return (f"{space.available_bytes // 1024} KiB free at {space.existing}, "
                f"{needed // 1024} KiB needed ({path})")
    return None
