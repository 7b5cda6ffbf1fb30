"""The model role: the model's files on the host, in ``model_cache_dir``.

A ``model_path`` folder on the control machine is synced to the host; a
``model_id`` is pulled from the hub into the cache with the vLLM venv's
huggingface_hub (skipped once its config.json is there). The cache is never
deleted by armada.
"""

import inspect
import os
import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Directory, File
from pyinfra.operations import files, server

from armada import envfile
from armada.errors import DataError
from armada.facts.disk import FreeSpace
from armada.parsers.disk import disk_problem
from armada.role import Role, RoleRun
from armada.serving import model_bytes, model_dir, model_name
from roles.model.defaults import KEYS


def checks(name: str, data):
    """One model, named one way, on a host that serves or holds one."""
    roles = data["armada_roles"]
    if "vllm_service" not in roles and "model" not in roles:
        return  # no model needed on a host that does not serve
    if data["model_path"] and data["model_id"]:
        yield DataError(name, "model_path", data["model_path"], "set model_path (a local folder) or model_id (a hub "
                        "id), not both")
    if not data["model_path"] and not data["model_id"]:
        yield DataError(name, "model_id", None, "no model: set model_path (a local folder) or model_id (a hub id)")


def preflight(run: RoleRun):
    """The model cache must be writable and have room for a model not there yet."""
    target = model_dir(run.data)
    needed = None if run.host.get_fact(Directory, path=target) else model_bytes(run.data)
    problem = disk_problem(run.host.get_fact(FreeSpace, path=target), target, needed)
    if problem:
        yield DataError(run.host.name, "model_cache_dir", run.data["model_cache_dir"], problem)


@deploy("armada model")
def apply(run: RoleRun):
    data = run.data
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
    server.shell(
        name=f"pull {data['model_id']} from the hub",
        commands=[f"{shlex.quote(python)} -c {shlex.quote(pull_script(data, target))} "
                  f"&& chown -R {user}:{user} {shlex.quote(target)}"],
    )


def pull_script(data, target: str) -> str:
    """The Python the host runs to pull a hub model: egress.env read as data
    (never sourced by a shell), a gated model's token read from its file
    (never on a command line), values as Python literals."""
    return (
        inspect.getsource(envfile.parse) + "\n"
        "import os\n"
        f"with open({data['armada_config_dir'] + '/egress.env'!r}) as handle:\n"
        "    os.environ.update(parse(handle.read()))\n"
        + (f"with open({data['model_hub_token_file']!r}) as handle:\n"
           "    os.environ['HF_TOKEN'] = handle.read().strip()\n" if data["model_hub_token_file"] else "")
        + "from huggingface_hub import snapshot_download\n"
        f"snapshot_download(repo_id={data['model_id']!r}, local_dir={target!r})\n"
    )


ROLE = Role(
    name="model",
    doc="the model's files in the host's model cache: synced from model_path, or pulled from the hub (model_id)",
    keys=KEYS,
    checks=checks,
    preflight=preflight,
    apply=apply,
)
