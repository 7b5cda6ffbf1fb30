"""LAB ONLY: small HTTP servers on the lab bridge (or loopback) that stand in
for what a site serves its hosts: ``LabServer`` is their shared plumbing (a
threaded server, its URL, start and stop); ``LabFiles`` serves a folder the
way an air-gapped site mirrors release tarballs (nats-server's), logging every
request in ``requests``. armada.lab.hub's LabHub is the other one. Never part
of the product."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from armada.lab.layout import GATEWAY


class LabServer:
    """A threaded HTTP server at ``url`` answering with ``handler`` (a request handler class or factory)."""

    def __init__(self, handler, address: str, port: int = 0):
        self.server = ThreadingHTTPServer((address, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LabFiles(LabServer):
    """``folder`` at ``url`` (start(), stop())."""

    def __init__(self, folder: str, address: str = GATEWAY, port: int = 0):
        self.requests: list[str] = []
        served = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                served.requests.append(self.path)

        super().__init__(functools.partial(Handler, directory=folder), address, port)
