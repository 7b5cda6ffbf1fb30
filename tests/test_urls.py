"""URLs a run needs are asked from the host before anything changes: which
ones (a pure decision) and what the probe's real outputs mean."""

import pytest
from conftest import build_profile, fixture_text, host_dir

from armada.deploy import urls_to_check
from armada.parsers.host import host_facts_from_outputs
from armada.parsers.urls import url_problem
from armada.schema import with_defaults
from armada.snapshot import read_snapshot


@pytest.mark.parametrize("name, problem", [
    ("curl-200.txt", None),
    ("python-200.txt", None),
    ("curl-404.txt", "answers HTTP 404: no such path"),
    ("python-404.txt", "answers HTTP 404: no such path"),
    ("curl-refused.txt", "unreachable from the host: curl: (7) Failed to connect to 127.0.0.1 port 9"),
    ("curl-dns.txt", "unreachable from the host: curl: (6) Could not resolve host: nonexistent.invalid"),
    ("python-refused.txt", "unreachable from the host: error: [Errno 111] Connection refused"),
    ("curl-proxy-refused.txt", "answers HTTP 500 (through a proxy: the proxy could not reach it)"),
    # a fresh host that does not trust the egress CA yet (the base role installs armada_ca_certs)
    ("curl-untrusted.txt", "untrusted certificate: curl: (60) SSL certificate problem"),
    ("python-untrusted.txt", "untrusted certificate: error: [SSL: CERTIFICATE_VERIFY_FAILED]"),
])
def test_probe_outputs(name, problem):
    seen = url_problem(fixture_text("url-probe", name))
    assert (seen is None) if problem is None else seen.startswith(problem), seen


def test_an_answer_that_is_not_a_404_is_reachable():
    assert url_problem("http 403\n") is None and url_problem("http 405\n") is None
    assert url_problem("") == "unreachable from the host: no answer"


def plan(host, **data):
    data = with_defaults(data)
    profile = build_profile(host, host_facts_from_outputs(read_snapshot(host_dir(host))), data)
    return urls_to_check(data, profile)


def test_which_urls_each_host_needs():
    # a Graviton builds against the CPU index: torch must be there
    assert plan("graviton3") == [("torch_index_url", "https://download.pytorch.org/whl/cpu/torch/")]
    gh = plan("gh200", nvidia_repo_mirror="http://mirror.lab/cuda", vllm_wheelhouse="http://mirror.lab/wheels")
    assert ("nvidia_repo_mirror", "http://mirror.lab/cuda") in gh and ("vllm_wheelhouse", "http://mirror.lab/wheels") in gh
    # a Graviton never fetches the NVIDIA mirror; a control plane fetches no index
    assert ("nvidia_repo_mirror", "http://mirror.lab/cuda") not in plan("graviton3", nvidia_repo_mirror="http://mirror.lab/cuda")
    release = {"nats_source": "release", "nats_release_url": "https://mirror.lab/nats.tar.gz",
               "nats_release_sha256": "0" * 64}
    assert plan("graviton3", armada_roles=["base", "nats", "etcd"], **release) == [
        ("nats_release_url", "https://mirror.lab/nats.tar.gz")]


def test_a_urls_sha256_is_read_by_downloading_it(tmp_path):
    """UrlSha256's own command, run here against a real HTTP server: the body's sha256, or why not."""
    import functools
    import hashlib
    import subprocess
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from armada.facts.urls import UrlSha256
    from armada.parsers.urls import parse_url_sha256

    body = b"nats-server release bytes\n" * 4000
    (tmp_path / "nats.tar.gz").write_bytes(body)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        def sha(url):
            command = UrlSha256().command(url)
            return parse_url_sha256(subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout)
        assert sha(f"{base}/nats.tar.gz") == (hashlib.sha256(body).hexdigest(), None)
        missing, why = sha(f"{base}/none.tar.gz")
        assert missing is None and why == "File not found"  # the 404 reason http.server gives
    finally:
        server.shutdown()
