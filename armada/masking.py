"""Credentials inside URLs (``http://user:password@proxy:3128``): hidden in
every name, log, report and error armada prints. Below everything else of
armada's (errors and keys use it); imports nothing of armada."""

from __future__ import annotations

import re


def mask_url(value: str) -> str:
    """A URL with its password hidden (``http://user:***@proxy:3128``): for names, logs and reports."""
    return _CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", value)


def has_credentials(value: str | None) -> bool:
    """Whether a URL carries a user or password (``http://user:pass@proxy``)."""
    return bool(value) and bool(_CREDENTIALS.search(value) or _USER_ONLY.search(value))


# scheme://user:password@ anywhere in a text (a URL, a log line, a profile reason)
_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^:/@\s]*):[^@/\s]*@")
_USER_ONLY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]+@")
