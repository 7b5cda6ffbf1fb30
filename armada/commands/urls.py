"""The python URL probe, for hosts that have no curl yet.

Its output (or curl's) is read by :func:`armada.parsers.urls.url_problem`.
"""

from __future__ import annotations

# Run by the UrlStatus fact on the host (python3 when the host has no curl yet):
# prints "http <code>" when a server answered, or the client's error.
URL_PROBE_PY = r"""
import sys, urllib.error, urllib.request
url, proxy = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {}))
try:
    print("http", opener.open(urllib.request.Request(url, method="HEAD"), timeout=15).status)
except urllib.error.HTTPError as exc:
    print("http", exc.code)
except Exception as exc:
    print("error:", getattr(exc, "reason", None) or exc)
"""


# prints "sha256 <hex>" of the whole body at a URL (through the proxy in argv[2] when given), or "error: ..."
URL_SHA256_PY = r"""
import hashlib, sys, urllib.request
url, proxy = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {}))
digest = hashlib.sha256()
try:
    with opener.open(url, timeout=60) as response:
        for block in iter(lambda: response.read(1 << 20), b""):
            digest.update(block)
    print("sha256", digest.hexdigest())
except Exception as exc:
    print("error:", getattr(exc, "reason", None) or exc)
"""
