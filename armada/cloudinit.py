"""``armada cloud-init INVENTORY GROUP``: user-data that makes a new instance
deploy itself.

The ``#cloud-config`` it prints installs the packages the bootstrap needs,
writes the group's data (``/etc/armada/bootstrap/data.json``), an inventory
of one host (``@local``) that carries it, the bootstrap script
(files/armada-bootstrap.sh) and a unit that reruns it at every boot, then
runs the script once. The script installs armada from ``armada_install``
and runs ``deploys/llm.py`` against the instance itself; it logs to
/var/log/armada-bootstrap.log and writes /var/lib/armada-bootstrap/status.json.

Secrets are files on the instance (``vllm_api_key_file``,
``model_hub_token_file``), written by the cloud's own secret delivery; the
user-data names them and the bootstrap refuses to deploy without them. Only
``--bake-secret KEY=ENVVAR`` puts a secret's value into the user-data (0600
on the instance), with a warning: whoever reads the instance's user-data
reads the secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import yaml

from armada.errors import DataError
from armada.masking import has_credentials, mask_url
from armada.paths import shared
from armada.schema import secret_file_keys, validate_host_data, with_defaults

CONF = "/etc/armada/bootstrap"
SCRIPT = "/usr/local/sbin/armada-bootstrap"
UNIT = "/etc/systemd/system/armada-bootstrap.service"
CA_DIR = "/usr/local/share/ca-certificates/armada"
# folders on the instance itself: they cannot be checked on this machine
INSTANCE_PATH_KEYS = ("model_path", "vllm_wheelhouse")
# set by the bootstrap, not by data
DROPPED_KEYS = ("armada_health_report",)
PYINFRA_PREFIXES = ("ssh_", "winrm_", "docker_", "_")


class CloudInitError(ValueError):
    pass


def group_data(inventory, group: str) -> dict[str, Any]:
    """The group's own data (over the inventory's ``all``), without any one host's."""
    if group not in inventory.groups or not inventory.groups[group]:
        known = ", ".join(sorted(g for g, hosts in inventory.groups.items() if hosts)) or "none"
        raise CloudInitError(f"no group {group!r} with hosts in this inventory (groups: {known})")
    data = dict(inventory.get_group_data("all") or {})
    data.update(inventory.get_group_data(group) or {})
    return {k: v for k, v in data.items() if not k.startswith(PYINFRA_PREFIXES)}


def check_group(group: str, data: Mapping[str, Any]) -> list[DataError]:
    """Every problem with this group's data for an instance that deploys itself.

    The schema's checks run as for any host, except that folders named by
    ``model_path`` and ``vllm_wheelhouse`` are on the instance, not here:
    those must be absolute paths (or a URL), and the deploy on the instance
    checks them again before it changes anything.
    """
    where = f"group {group}"
    errors: list[DataError] = []
    probe = {k: v for k, v in data.items() if k not in INSTANCE_PATH_KEYS}
    for key in INSTANCE_PATH_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not (value.startswith("/") or (key == "vllm_wheelhouse" and "://" in value)):
            errors.append(DataError(where, key, value, "must be an absolute path on the instance"
                                    + (" or a URL" if key == "vllm_wheelhouse" else "")))
    if data.get("model_path") and data.get("model_id"):
        errors.append(DataError(where, "model_path", data["model_path"], "set model_path or model_id, not both"))
    elif data.get("model_path"):
        probe["model_id"] = "instance-local/model"  # stands in for the folder: one model is set
    errors += validate_host_data(where, probe)
    full = with_defaults(data)
    if not full["armada_install"]:
        errors.append(DataError(where, "armada_install", None, "cloud-init needs it: how the instance installs "
                                "armada (armada==0.1.0, a wheel URL, or git+https://...@<ref>)"))
    if full["armada_control_plane"]:
        errors.append(DataError(where, "armada_control_plane", full["armada_control_plane"],
                                "an instance that deploys itself has no other inventory host; run nats and etcd on "
                                "it (roles nats, etcd) or deploy this group from a control machine"))
    if full["etcd_cluster_group"]:
        errors.append(DataError(where, "etcd_cluster_group", full["etcd_cluster_group"],
                                "an etcd cluster needs every member's address: deploy it from a control machine"))
    return errors


class _Literal(str):
    pass


def _literal(dumper, value):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal)


def _file(path: str, content: str, permissions: str = "0644") -> dict[str, Any]:
    return {"path": path, "permissions": permissions, "owner": "root:root", "content": _Literal(content)}


def _env_line(name: str, value: str) -> str:
    # a file that bash sources: single-quoted, quotes escaped
    return f"{name}='" + value.replace("'", "'\"'\"'") + "'"


def render(inventory, inventory_path: str, group: str, bake: Mapping[str, str] | None = None,
           environ: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """``(user-data text, warnings)``; raises :class:`CloudInitError` naming group, key and value."""
    environ = os.environ if environ is None else environ
    data = group_data(inventory, group)
    errors = check_group(group, data)
    bake = dict(bake or {})
    for key, variable in bake.items():
        if key not in secret_file_keys():
            errors.append(DataError(f"group {group}", key, variable, f"--bake-secret takes one of {', '.join(secret_file_keys())}"))
        elif not data.get(key):
            errors.append(DataError(f"group {group}", key, None, "set it (a path on the instance) to bake a secret into it"))
        elif not environ.get(variable):
            errors.append(DataError(f"group {group}", key, variable, f"environment variable {variable} is unset or empty"))
    if errors:
        raise CloudInitError("\n".join(f"  - {e}" for e in errors))

    full = with_defaults(data)
    warnings: list[str] = []
    files: list[dict[str, Any]] = []
    instance = {k: v for k, v in data.items() if k not in DROPPED_KEYS}

    certs = []
    for index, path in enumerate(full["armada_ca_certs"]):
        with open(path, encoding="utf-8") as handle:
            target = f"{CA_DIR}/{index:02d}-{os.path.basename(path).removesuffix('.crt')}.crt"
            files.append(_file(target, handle.read()))
            certs.append(target)
    if certs:
        instance["armada_ca_certs"] = certs

    secrets = [full[key] for key in secret_file_keys() if full[key]]
    for key, variable in bake.items():
        files.append(_file(full[key], environ[variable], "0600"))
        warnings.append(f"WARNING: the value of {variable} ({key}) is baked into this user-data IN CLEAR: anyone who "
                        "can read the instance's user-data (metadata service, console, cloud API) can read it. "
                        "Prefer your cloud's secret delivery writing that file.")

    env = [_env_line("ARMADA_INSTALL", full["armada_install"])]
    if full["armada_install_index_url"]:
        env.append(_env_line("ARMADA_INDEX_URL", full["armada_install_index_url"]))
    if full["armada_proxy"]:
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.append(_env_line(name, full["armada_proxy"]))
        for name in ("no_proxy", "NO_PROXY"):
            env.append(_env_line(name, full["armada_no_proxy"]))
    env.append(_env_line("ARMADA_SECRET_FILES", " ".join(secrets)))

    inventory_py = (
        f'"""Written by `armada cloud-init` from group {group!r} of {os.path.basename(inventory_path)}:\n'
        'this host, deployed by itself (pyinfra @local)."""\n\n'
        "import json\n\n"
        f'with open("{CONF}/data.json") as _handle:\n'
        "    _data = json.load(_handle)\n\n"
        f'{group} = (["@local"], _data)\n'
    )
    with open(shared("files/armada-bootstrap.sh"), encoding="utf-8") as handle:
        script = handle.read()
    with open(shared("files/armada-bootstrap.service"), encoding="utf-8") as handle:
        unit = handle.read()
    files += [
        # the group's data: root's alone when a URL in it carries a password
        _file(f"{CONF}/data.json", json.dumps(instance, indent=2, sort_keys=True) + "\n",
              "0600" if any(has_credentials(v) for v in instance.values() if isinstance(v, str)) else "0644"),
        _file(f"{CONF}/inventory.py", inventory_py),
        _file(f"{CONF}/bootstrap.env", "\n".join(env) + "\n", "0600"),
        _file(SCRIPT, script, "0755"),
        _file(UNIT, unit),
    ]
    config: dict[str, Any] = {
        "package_update": True,
        "packages": ["python3", "python3-venv", "ca-certificates", "curl"],
        "write_files": files,
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "armada-bootstrap.service"],
            [SCRIPT],
        ],
    }
    if full["armada_proxy"]:
        config["apt"] = {"http_proxy": full["armada_proxy"], "https_proxy": full["armada_proxy"]}
    header = (
        "#cloud-config\n"
        f"# armada: group {group!r} of {inventory_path}, generated by `armada cloud-init`.\n"
        f"# The instance installs armada ({mask_url(full['armada_install'])}) and runs deploys/llm.py on itself;\n"
        "# log: /var/log/armada-bootstrap.log, result: /var/lib/armada-bootstrap/status.json.\n"
        + (f"# Secret files the cloud must write before boot: {', '.join(secrets)}\n" if secrets else "")
        + ("# WARNING: this user-data holds secrets in clear (--bake-secret).\n" if bake else "")
    )
    return header + yaml.safe_dump(config, sort_keys=False, width=1000), warnings


def user_data_parts(text: str) -> dict[str, Any]:
    """The parsed cloud-config (tests and tools read it back)."""
    return yaml.safe_load(text)
