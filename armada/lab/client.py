"""The lab's OpenAI-compatible client calls (tests and bench/ scripts): a
chat completion against a lab host's vLLM or Dynamo frontend, with the lab's
API key (the serving hosts answer beyond loopback only with one)."""

from __future__ import annotations

import json
import urllib.request

from armada.lab.assets import MODEL_NAME
from armada.lab.hosts import lab_secret

API_KEY_SECRET = "vllm-api-key"


def chat_request(address: str, port: int, api_key: str | None = "lab", max_tokens: int = 5,
                 model: str = MODEL_NAME) -> urllib.request.Request:
    """A POST /v1/chat/completions; ``api_key`` 'lab': the lab's key, None: no Authorization header."""
    headers = {"Content-Type": "application/json"}
    if api_key == "lab":
        api_key = lab_secret(API_KEY_SECRET)
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": max_tokens}
    return urllib.request.Request(f"http://{address}:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                  headers=headers)


def completion_tokens(address: str, port: int, timeout: float = 120, **kwargs) -> int:
    """Tokens a real chat completion generated (raises urllib's HTTPError on 401 and other refusals)."""
    with urllib.request.urlopen(chat_request(address, port, **kwargs), timeout=timeout) as reply:
        return json.load(reply)["usage"]["completion_tokens"]
