"""Whether a URL is usable from a host, from a probe's output (curl's or
:data:`armada.commands.urls.URL_PROBE_PY`'s)."""

from __future__ import annotations


def url_problem(output: str) -> str | None:
    """Why a URL probe's output (curl's or URL_PROBE_PY's) says the URL is not
    usable from the host; None when a server answered with anything but
    404/410 or a 5xx (an index may well answer 403 or 405 to a HEAD). Through
    a proxy, a server that cannot be reached shows as the proxy's 502/503/504."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    codes = [line.split()[1] for line in lines if line.startswith("http ") and len(line.split()) == 2]
    errors = [line for line in lines if line.startswith(("curl:", "error:"))]
    code = codes[-1] if codes else "000"
    if code.startswith("5"):
        return f"answers HTTP {code} (through a proxy: the proxy could not reach it)"
    if code != "000":
        return f"answers HTTP {code}: no such path" if code in ("404", "410") else None
    error = errors[0] if errors else (lines[-1] if lines else "no answer")
    if "CERTIFICATE_VERIFY_FAILED" in error or "curl: (60)" in error:
        return "untrusted certificate: " + error
    return "unreachable from the host: " + error


def parse_url_sha256(output: str) -> tuple[str | None, str | None]:
    """(the sha256 of what the URL served, None) or (None, why it could not be read), from URL_SHA256_PY's output."""
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("sha256 ") and len(line.split()) == 2:
            return line.split()[1], None
        if line.startswith("error:"):
            return None, line[len("error:"):].strip() or "no answer"
    return None, (output.strip().splitlines() or ["no answer"])[-1]
