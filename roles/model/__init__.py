"""The model role: the model's files on the host, in ``model_cache_dir``.

A ``model_path`` folder on the control machine is synced to the host; a
``model_id`` is pulled from the hub into the cache with the vLLM venv's
huggingface_hub (skipped once its config.json is there). The cache is never
deleted by armada.
"""

import os
import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from armada.profile import Profile
from armada.role_support import role_data


def model_name(data: dict) -> str:
    """The name the server answers to (and the model's folder in the cache)."""
    if data["model_name"]:
        return data["model_name"]
    if data["model_path"]:
        return os.path.basename(os.path.normpath(os.path.expanduser(data["model_path"])))
    return data["model_id"].replace("/", "--")


def model_dir(data: dict) -> str:
    return f"{data['model_cache_dir']}/{model_name(data)}"


@deploy("armada model")
def apply(profile: Profile):
    data = role_data(host)
    user = data["armada_user"]
    target = model_dir(data)
    files.directory(name="model cache", path=data["model_cache_dir"], user=user, group=user, mode="755")
    if data["model_path"]:
        files.sync(
            name=f"model {model_name(data)}",
            src=os.path.expanduser(data["model_path"]),
            dest=target,
            user=user,
            group=user,
            mode="644",
            dir_mode="755",
            delete=True,
        )
        return
    if host.get_fact(File, path=f"{target}/config.json"):
        return
    files.directory(name=f"model dir {model_name(data)}", path=target, user=user, group=user, mode="755")
    python = f"{data['armada_root']}/vllm/current/bin/python"
    fetch = (
        "from huggingface_hub import snapshot_download; "
        f"snapshot_download(repo_id={data['model_id']!r}, local_dir={target!r})"
    )
    server.shell(
        name=f"pull {data['model_id']} from the hub",
        commands=[
            f"set -a; . {data['armada_config_dir']}/egress.env; set +a; "
            # a gated model's token, read from its file on the host: never on a command line
            + (f"HF_TOKEN=$(cat {shlex.quote(data['model_hub_token_file'])}); export HF_TOKEN; "
               if data["model_hub_token_file"] else "")
            + 
            f"{python} -c {shlex.quote(fetch)} && chown -R {user}:{user} {shlex.quote(target)}"
        ],
    )
