"""The vLLM role: torch and vLLM in a versioned venv, and the serving unit.

Its data keys (and their defaults) are in :mod:`roles.vllm.defaults`; the
decisions drawn from them and the host's facts are in :mod:`armada.profile`.
"""
