"""The model role: the model's files on the host, in ``model_cache_dir``.

A ``model_path`` folder on the control machine is synced to the host; a
``model_id`` is pulled from the hub (``model_hub_endpoint``: Hugging Face or a
mirror) by files/armada-hub-pull.py with the host's own python3, so a fresh
host needs no venv for it: resumable, every file checked against the hub's
sizes and hashes, and marked complete only then (a pull that was stopped is
resumed by the next run; a complete one is not pulled again). The cache is
never deleted by armada.
"""

import hashlib
import inspect
import json
import os
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.command import QuoteString, StringCommand
from pyinfra.api.hiddenvalue import HiddenValue
from pyinfra.facts.files import Directory, File
from pyinfra.operations import files, server

from armada import envfile
from armada.errors import DataError
from armada.facts.disk import FreeSpace
from armada.masking import mask_url
from armada.parsers.disk import disk_problem
from armada.paths import shared
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
    marker = pull_marker(data)
    if host.get_fact(File, path=f"{target}/{marker}"):
        return
    files.directory(name=f"model dir {model_name(data)}", path=target, user=user, group=user, mode="755")
    tools = f"{data['armada_root']}/bin"
    files.directory(name="hub pull tool dir", path=tools, mode="755")
    files.put(name="hub pull tool", src=shared(f"files/{PULL_TOOL}"), dest=f"{tools}/{PULL_TOOL}", mode="755")
    # the tool reads egress.env with armada's own parser (as data, never sourced by a shell)
    files.put(name="hub pull tool: env file parser", src=inspect_source(envfile), dest=f"{tools}/armada_envfile.py",
              mode="644")
    server.shell(
        name=f"pull {data['model_id']}@{data['model_revision']} from {mask_url(data['model_hub_endpoint'])}",
        commands=[StringCommand(*pull_command(data, f"{tools}/{PULL_TOOL}", target, marker), "&&", "chown", "-R",
                                f"{user}:{user}", shlex.quote(target))],
    )


PULL_TOOL = "armada-hub-pull.py"


def pull_marker(data) -> str:
    """The file a complete pull writes into the model's folder, named for what was asked (repository,
    revision, endpoint, exclusions): asking for another revision pulls again."""
    asked = json.dumps([data["model_id"], data["model_revision"], data["model_hub_endpoint"],
                        sorted(data["model_hub_exclude"])])
    return ".armada-pulled-" + hashlib.sha256(asked.encode()).hexdigest()[:12]


def pull_command(data, tool: str, target: str, marker: str) -> list:
    """The pull's arguments, each shell-quoted; the endpoint printed with any password masked.
    The token stays in its file: only the file's path is an argument."""
    endpoint = data["model_hub_endpoint"]
    args = ["python3", shlex.quote(tool),
            QuoteString(HiddenValue(f"--endpoint={endpoint}", masked_value=f"--endpoint={mask_url(endpoint)}")),
            shlex.quote(f"--repo={data['model_id']}"), shlex.quote(f"--revision={data['model_revision']}"),
            shlex.quote(f"--dest={target}"), shlex.quote(f"--marker={marker}"),
            shlex.quote(f"--env-file={data['armada_config_dir']}/egress.env")]
    if data["model_hub_token_file"]:
        args.append(shlex.quote(f"--token-file={data['model_hub_token_file']}"))
    args += [shlex.quote(f"--exclude={pattern}") for pattern in data["model_hub_exclude"]]
    return args


def inspect_source(module):
    """A module's source as a file to upload."""
    return StringIO(inspect.getsource(module))


def urls(data, _profile) -> list[tuple[str, str]]:
    """The hub's answer for the asked revision (a gated model answers 401 without the token: reachable)."""
    if not data["model_id"] or data["model_path"]:
        return []
    return [("model_hub_endpoint", f"{data['model_hub_endpoint'].rstrip('/')}/api/models/{data['model_id']}/revision/"
                                   f"{data['model_revision']}")]


ROLE = Role(
    name="model",
    doc="the model's files in the host's model cache: synced from model_path, or pulled from the hub (model_id)",
    keys=KEYS,
    checks=checks,
    preflight=preflight,
    urls=urls,
    apply=apply,
)
