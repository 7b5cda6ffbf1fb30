"""Whether a URL answers from the host itself."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from armada.commands.urls import URL_PROBE_PY, URL_SHA256_PY
from armada.parsers.urls import parse_url_sha256, url_problem


class UrlStatus(FactBase):
    """What the host sees when it asks a URL for its headers (HEAD, through
    ``proxy`` when given): a problem sentence, or None when a server answered
    (see armada.parsers.urls.url_problem)."""

    def command(self, url: str, proxy: str | None = None):
        target = shlex.quote(url)
        route = f"--proxy {shlex.quote(proxy)}" if proxy else "--noproxy '*'"
        curl = f"curl -sS -I -o /dev/null -w 'http %{{http_code}}\\n' --max-time 15 {route} {target} 2>&1"
        python = f"python3 -c {shlex.quote(URL_PROBE_PY)} {target} {shlex.quote(proxy or '')} 2>&1"
        return f"if command -v curl >/dev/null; then {curl}; else {python}; fi; true"

    def process(self, output):
        return url_problem("\n".join(output))


class UrlSha256(FactBase):
    """The sha256 of what a URL serves, downloaded by the host itself (through ``proxy``) and
    hashed as it arrives, nothing kept: (sha256, None) or (None, why it could not be read)."""

    def command(self, url: str, proxy: str | None = None):
        return f"python3 -c {shlex.quote(URL_SHA256_PY)} {shlex.quote(url)} {shlex.quote(proxy or '')} 2>&1; true"

    def process(self, output):
        return parse_url_sha256("\n".join(output))
