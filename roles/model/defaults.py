"""Data keys of the model role, with defaults."""

import os

from armada.keys import SECRET, Key, absolute_path, at_least, secret_path


def _local_folder(value: str) -> str | None:
    if not os.path.isdir(os.path.expanduser(value)):
        return "no such folder on the control machine"
    if not os.path.isfile(os.path.join(os.path.expanduser(value), "config.json")):
        return "folder has no config.json: not a Hugging Face model folder"
    return None


KEYS = (
    Key("model_hub_token_file", str, None, "File ON THE HOST holding the hub token for gated models (0600, "
        "written by your secret agent or cloud-init); read at pull time, never put in data, logs or a command line",
        nullable=True, check=secret_path, holds=SECRET),
    Key("model_path", str, None, "Model folder on the control machine, synced to each host", nullable=True,
        check=_local_folder),
    Key("model_id", str, None, "Hugging Face hub id pulled into model_cache_dir on the host", nullable=True,
        check=lambda v: None if v.count("/") == 1 and " " not in v else "must look like 'org/name'"),
    Key("model_name", str, None, "Name the server answers to (--served-model-name); default: the folder or hub id",
        nullable=True),
    Key("model_size_gib", float, None, "Weights size, when known ahead; model_path folders are measured instead",
        nullable=True, check=at_least(0)),
    Key("model_cache_dir", str, "/var/lib/armada/models", "Where models live on the host; kept across reruns "
        "and upgrades", check=absolute_path),
)
