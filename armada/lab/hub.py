"""LAB ONLY: a Hugging Face hub mirror serving one model folder, the way
huggingface_hub and armada's hub pull (files/armada-hub-pull.py) expect.

It answers the two calls a snapshot pull makes:

* ``GET /api/models/<repo>/revision/<revision>[?blobs=true]``: the commit and every
  file with its size, git blob sha1 and, for ``*.safetensors``, its LFS sha256;
* ``GET|HEAD /<repo>/resolve/<revision>/<file>``: the file, with the hub's headers
  (X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size, Accept-Ranges) and Range
  requests (206). LFS files are redirected to ``<cdn>/lfs/<sha256>`` (as the hub
  redirects to its CDN; ``cdn`` may name this server by another host name).

Optionally gated (``token``: requests without ``Authorization: Bearer <token>`` get
401) and throttled (``rate``: bytes per second per download), so that a test can
kill a pull midway. Every request is logged in ``requests`` (method, path, Range,
whether it had the token). Never part of the product.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from armada.lab.static import LabServer

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


class LabHub(LabServer):
    """The mirror of ``folder`` as ``repo`` (start(), url, stop())."""

    def __init__(self, folder: str, repo: str, address: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, rate: int | None = None, cdn: str = ""):
        self.repo, self.token, self.rate, self.cdn = repo, token, rate, cdn.rstrip("/")
        self.files: dict[str, bytes] = {}
        for root, _, names in os.walk(folder):
            for name in sorted(names):
                path = os.path.join(root, name)
                with open(path, "rb") as handle:
                    self.files[os.path.relpath(path, folder)] = handle.read()
        digest = hashlib.sha1()
        for name, data in sorted(self.files.items()):
            digest.update(name.encode() + b"\0" + data)
        self.commit = digest.hexdigest()
        self.requests: list[dict] = []
        self.bytes_sent: dict[str, int] = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hub._handle(self, body=True)

            def do_HEAD(self):
                hub._handle(self, body=False)

            def log_message(self, *args):
                pass

        super().__init__(Handler, address, port)

    def entries(self, blobs: bool) -> list[dict]:
        out = []
        for name, data in sorted(self.files.items()):
            entry = {"rfilename": name}
            if blobs:
                entry.update(size=len(data), blobId=_git_blob_sha1(data))
                if name.endswith(LFS_SUFFIXES):
                    entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            out.append(entry)
        return out

    # ------------------------------------------------------------ requests

    def _handle(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        parsed = urllib.parse.urlsplit(request.path)
        path = urllib.parse.unquote(parsed.path)
        authorized = request.headers.get("Authorization") == f"Bearer {self.token}"
        self.requests.append({"method": request.command, "path": path, "range": request.headers.get("Range"),
                              "token": authorized})
        if path.startswith("/lfs/"):
            # the "CDN": the redirect target carries the grant, not the token
            name = next((n for n, d in self.files.items() if hashlib.sha256(d).hexdigest() == path[5:]), None)
            return self._send_file(request, name, body) if name else self._error(request, 404, "EntryNotFound")
        if self.token and not authorized:
            return self._error(request, 401, "GatedRepo", "Access to model is restricted: authenticate")
        api = f"/api/models/{self.repo}/revision/"
        resolve = f"/{self.repo}/resolve/"
        if path.startswith(api):
            blobs = urllib.parse.parse_qs(parsed.query).get("blobs", ["false"])[0].lower() == "true"
            info = {"_id": self.commit[:24], "id": self.repo, "modelId": self.repo, "sha": self.commit,
                    "private": False, "gated": "manual" if self.token else False, "disabled": False,
                    "tags": [], "downloads": 0, "likes": 0, "siblings": self.entries(blobs)}
            return self._send(request, 200, json.dumps(info).encode(), {"Content-Type": "application/json",
                                                                       "X-Repo-Commit": self.commit}, body)
        if path.startswith(resolve):
            _revision, _, name = path[len(resolve):].partition("/")
            data = self.files.get(name)
            if data is None:
                return self._error(request, 404, "EntryNotFound")
            if name.endswith(LFS_SUFFIXES):
                sha = hashlib.sha256(data).hexdigest()
                return self._send(request, 302, b"", {"Location": f"{self.cdn}/lfs/{sha}", "X-Repo-Commit": self.commit,
                                                      "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                                                      "ETag": f'"{_git_blob_sha1(data)}"'}, body)
            return self._send_file(request, name, body)
        return self._error(request, 404, "RepoNotFound")

    def _send_file(self, request, name: str, body: bool) -> None:
        data = self.files[name]
        headers = {"X-Repo-Commit": self.commit, "ETag": f'"{_git_blob_sha1(data)}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start = 0
        wanted = request.headers.get("Range", "")
        if wanted.startswith("bytes=") and wanted[6:].split("-")[0].isdigit():
            start = int(wanted[6:].split("-")[0])
            if start >= len(data):
                return self._send(request, 416, b"", {"Content-Range": f"bytes */{len(data)}"}, body)
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send(request, 206 if start else 200, data[start:], headers, body, name=name)

    def _error(self, request, code: int, error_code: str, message: str = "") -> None:
        self._send(request, code, json.dumps({"error": message or error_code}).encode(),
                   {"X-Error-Code": error_code, "Content-Type": "application/json"}, True)

    def _send(self, request, code: int, payload: bytes, headers: dict, body: bool, name: str | None = None) -> None:
        request.send_response(code)
        for key, value in headers.items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if not body or not payload:
            return
        step = max(1, (self.rate or len(payload)) // 10)
        try:
            for offset in range(0, len(payload), step):
                request.wfile.write(payload[offset:offset + step])
                request.wfile.flush()
                if name:
                    self.bytes_sent[name] = self.bytes_sent.get(name, 0) + len(payload[offset:offset + step])
                if self.rate:
                    time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a killed pull)
