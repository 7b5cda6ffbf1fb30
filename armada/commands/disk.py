"""Where a path is (or will be created): free space and mount options.

Parsed by :func:`armada.parsers.disk.parse_disk_space`.
"""

from __future__ import annotations

import shlex


def disk_space_command(path: str) -> str:
    """The nearest existing folder of ``path``, df's line for it and its mount options."""
    return (
        f"p={shlex.quote(path)}; while [ ! -e \"$p\" ]; do p=$(dirname \"$p\"); done; "
        "echo \"path $p\"; df -Pk \"$p\" | tail -n 1; echo \"options $(findmnt -no OPTIONS --target \"$p\")\""
    )
