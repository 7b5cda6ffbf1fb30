#!/usr/bin/env python3
"""Pull one revision of a model from a Hugging Face hub (or a mirror of one) into a
folder: resumable, every file checked against the hub's own sizes and hashes.

Shipped by armada's model role and run with the host's python3 (standard library
only, so that a fresh host needs no venv for it)::

    python3 armada-hub-pull.py --endpoint https://huggingface.co --repo org/name \
        --revision main --dest /var/lib/armada/models/org--name --marker .armada-pulled-1a2b \
        [--token-file /etc/armada/secrets/hub-token] [--env-file /etc/armada/egress.env] \
        [--exclude 'original/*']

1. Asks the hub for the revision's commit and every file's size and hash
   (``GET /api/models/<repo>/revision/<revision>?blobs=true``, the call behind
   huggingface_hub's ``model_info(files_metadata=True)``).
2. Fetches each file not yet complete into ``<file>.armada-partial``, continuing a
   partial one with an HTTP Range request: a pull killed midway resumes where it stopped.
3. Checks each file's size and hash (LFS files: their sha256; others: their git blob
   sha1) before moving it in place; a file that does not match is fetched again once.
4. Writes the marker file (repo, commit, files, bytes) only when every file is there.

The token is read from its file (never an argument) and sent only to the endpoint's own
host: a redirect to another host (the hub's CDN) gets no token. Proxies come from the
env file (``HTTPS_PROXY``/``NO_PROXY``), read as data. Exit status 0 when complete;
1 with the reason on stderr otherwise.
"""

import argparse
import fnmatch
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

try:  # on a host: shipped beside this file
    from armada_envfile import parse as parse_env
except ImportError:  # in armada's own tests
    from armada.envfile import parse as parse_env

CHUNK = 1 << 20
# read from the network in small blocks, each written through at once: a killed pull keeps what it got
NET_CHUNK = 64 << 10
ATTEMPTS = 4
PARTIAL = ".armada-partial"


class PullError(Exception):
    pass


class _KeepTokenOnSameHost(urllib.request.HTTPRedirectHandler):
    """Follow redirects; the token goes along only while the host stays the endpoint's."""

    def __init__(self, host, token):
        self.host, self.token = host, token

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and self.token and urllib.parse.urlsplit(new.full_url).netloc == self.host:
            new.add_unredirected_header("Authorization", f"Bearer {self.token}")
        return new


class Hub:
    def __init__(self, endpoint, token=None, timeout=60):
        self.endpoint = endpoint.rstrip("/")
        self.host = urllib.parse.urlsplit(self.endpoint).netloc
        self.token = token
        self.timeout = timeout
        # built after the env file was read: urllib takes proxies from the environment here
        self.opener = urllib.request.build_opener(_KeepTokenOnSameHost(self.host, token))

    def open(self, url, headers=None):
        request = urllib.request.Request(url, headers=headers or {})
        if self.token:
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        try:
            return self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                raise PullError(f"{url}: HTTP {err.code}: the hub refused the request (a gated or private model "
                                "needs a token with access: model_hub_token_file)") from None
            if err.code == 404:
                raise PullError(f"{url}: HTTP 404: no such model, revision or file on {self.endpoint}") from None
            raise

    def snapshot(self, repo, revision):
        """(commit, [file entries]) of ``repo`` at ``revision``: rfilename, size, blobId, lfs."""
        url = (f"{self.endpoint}/api/models/{urllib.parse.quote(repo)}/revision/"
               f"{urllib.parse.quote(revision, safe='')}?blobs=true")
        with self.open(url) as response:
            info = json.load(response)
        siblings = info.get("siblings")
        if not info.get("sha") or siblings is None:
            raise PullError(f"{url}: the answer has no commit or file list (not a hub API?)")
        return info["sha"], siblings

    def file_url(self, repo, commit, name):
        return f"{self.endpoint}/{urllib.parse.quote(repo)}/resolve/{commit}/{urllib.parse.quote(name)}"


def expected(entry):
    """(size, hash kind, hash) the hub gives for a file: sha256 for LFS files, the git blob sha1 otherwise."""
    lfs = entry.get("lfs")
    if lfs:
        return lfs["size"], "sha256", lfs["sha256"]
    return entry.get("size"), "git-sha1", entry.get("blobId")


def digest(path, kind, size):
    hasher = hashlib.sha256() if kind == "sha256" else hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            hasher.update(block)
    return hasher.hexdigest()


def complete(path, entry):
    """The file is there with the hub's size and hash."""
    size, kind, wanted = expected(entry)
    if not os.path.isfile(path) or (size is not None and os.path.getsize(path) != size):
        return False
    return wanted is None or digest(path, kind, os.path.getsize(path)) == wanted


def fetch(hub, url, path, entry, log):
    """Download ``url`` into ``path``, continuing ``path``.armada-partial where it stopped."""
    size, kind, wanted = expected(entry)
    partial = path + PARTIAL
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for attempt in range(1, ATTEMPTS + 1):
        have = os.path.getsize(partial) if os.path.exists(partial) else 0
        if size is not None and have > size:
            os.remove(partial)  # longer than the file: not a prefix of it
            have = 0
        try:
            if size is None or have < size:
                headers = {"Range": f"bytes={have}-"} if have else {}
                with hub.open(url, headers) as response:
                    resumed = have and response.status == 206
                    if have:
                        log(f"{entry['rfilename']}: " + (f"resuming at byte {have}" if resumed else
                                                         "the server sent the whole file again"))
                    with open(partial, "ab" if resumed else "wb", buffering=0) as out:
                        for block in iter(lambda: response.read(NET_CHUNK), b""):
                            out.write(block)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            if attempt == ATTEMPTS:
                raise PullError(f"{url}: {err} (after {ATTEMPTS} attempts; the partial file is kept: "
                                "the next pull resumes it)") from None
            log(f"{entry['rfilename']}: {err}; trying again")
            time.sleep(2 * attempt)
            continue
        got = os.path.getsize(partial)
        if size is not None and got < size:
            continue  # the connection ended early: resume
        if wanted is not None and digest(partial, kind, got) != wanted:
            os.remove(partial)
            if attempt == ATTEMPTS:
                raise PullError(f"{entry['rfilename']}: {kind} differs from the hub's after {ATTEMPTS} downloads")
            log(f"{entry['rfilename']}: {kind} differs from the hub's; downloading it again")
            continue
        os.replace(partial, path)
        return got
    raise PullError(f"{entry['rfilename']}: still incomplete after {ATTEMPTS} attempts (the partial file is kept)")


def pull(hub, repo, revision, dest, exclude=(), log=print):
    """Every file of ``repo`` at ``revision`` (but ``exclude``'s) complete in ``dest``: (commit, files, bytes)."""
    commit, siblings = hub.snapshot(repo, revision)
    wanted = [entry for entry in siblings
              if not any(fnmatch.fnmatch(entry["rfilename"], pattern) for pattern in exclude)]
    root = os.path.realpath(dest)
    total = 0
    for entry in wanted:
        path = os.path.realpath(os.path.join(dest, entry["rfilename"]))
        if os.path.commonpath([root, path]) != root:
            raise PullError(f"the hub names a file outside the model folder: {entry['rfilename']!r}")
        if complete(path, entry):
            total += os.path.getsize(path)
            continue
        log(f"{entry['rfilename']}: fetching ({expected(entry)[0]} bytes)")
        total += fetch(hub, hub.file_url(repo, commit, entry["rfilename"]), path, entry, log)
    return commit, len(wanted), total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="https://huggingface.co")
    parser.add_argument("--repo", required=True)
    parser.add_argument("--revision", default="main")
    parser.add_argument("--dest", required=True)
    parser.add_argument("--marker", required=True, help="file name written into --dest once complete")
    parser.add_argument("--token-file")
    parser.add_argument("--env-file")
    parser.add_argument("--exclude", action="append", default=[])
    args = parser.parse_args(argv)
    if args.env_file and os.path.exists(args.env_file):
        with open(args.env_file) as handle:
            os.environ.update(parse_env(handle.read()))
    token = None
    if args.token_file:
        with open(args.token_file) as handle:
            token = handle.read().strip()

    def log(line):
        print(line, flush=True)
    try:
        commit, count, size = pull(Hub(args.endpoint, token), args.repo, args.revision, args.dest, args.exclude, log)
    except (PullError, urllib.error.URLError, OSError, ValueError) as err:
        print(f"armada-hub-pull: {args.repo}@{args.revision}: {err}", file=sys.stderr)
        return 1
    record = {"repo": args.repo, "revision": args.revision, "commit": commit, "files": count, "bytes": size,
              "endpoint": args.endpoint, "exclude": args.exclude}
    with open(os.path.join(args.dest, args.marker), "w") as handle:
        json.dump(record, handle)
        handle.write("\n")
    log(f"{args.repo}@{commit}: {count} files, {size} bytes, complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
