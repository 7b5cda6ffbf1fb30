"""The vllm_service role reads the vllm role's keys (roles/vllm/defaults.py)."""

KEYS = ()
