"""LAB ONLY: a folder served over plain HTTP on the lab bridge, the way an
air-gapped site mirrors release tarballs (nats-server's) for its hosts.
Every request is logged in ``requests``. Never part of the product."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from armada.lab.layout import GATEWAY


class LabFiles:
    """``folder`` at ``url`` (start(), stop())."""

    def __init__(self, folder: str, address: str = GATEWAY, port: int = 0):
        self.requests: list[str] = []
        served = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                served.requests.append(self.path)

        self.server = ThreadingHTTPServer((address, port), functools.partial(Handler, directory=folder))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LabFiles":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
