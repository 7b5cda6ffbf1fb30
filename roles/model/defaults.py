"""Data keys of the model role, with defaults."""

import os

from armada.keys import (SECRET, Key, absolute_path, at_least, git_ref, glob_pattern, list_of, local_path, model_id, name,
                         secret_path, url)


def _local_folder(value: str) -> str | None:
    if local_path(value):
        return local_path(value)
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
        check=model_id),
    Key("model_revision", str, "main", "Branch, tag or commit of model_id pulled (a pulled revision is not pulled "
        "again: pin a commit to move to another one)", check=git_ref),
    Key("model_hub_endpoint", str, "https://huggingface.co", "The hub model_id is pulled from: Hugging Face, or an "
        "enterprise mirror of it (what huggingface_hub calls HF_ENDPOINT)", check=lambda v: url(v, ("http", "https"))),
    Key("model_hub_exclude", list, [], "File patterns of the model repository not pulled (e.g. 'original/*', "
        "'*.pth': a repository's duplicate weights)", check=list_of(glob_pattern, "a file pattern")),
    Key("model_name", str, None, "Name the server answers to (--served-model-name) and its folder in "
        "model_cache_dir; default: the folder or hub id", nullable=True, check=name),
    Key("model_size_gib", float, None, "Weights size, when known ahead; model_path folders are measured instead",
        nullable=True, check=at_least(0)),
    Key("model_cache_dir", str, "/var/lib/armada/models", "Where models live on the host; kept across reruns "
        "and upgrades", check=absolute_path),
)
