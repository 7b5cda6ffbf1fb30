"""Every data key, given hostile values: shell metacharacters, a line break,
'..', a 5000-character string, the wrong type, and lists or dicts holding
such strings. `armada check`'s own function (armada.inventory.
validate_inventory) must refuse each with exactly one error naming host,
key and value. Then the places those values reach a shell, a launcher or an
env file: quoting that keeps each value one argument."""

import json
import shlex
import subprocess

import pytest
from pyinfra.api import Inventory

from armada import schema
from armada.inventory import load_inventory, validate_inventory
from armada.keys import systemd_env_value
from armada.masking import has_credentials, mask_url

GOOD = {"model_id": "org/model"}

SHELL = ["a;b", "$(id)", "`id`", "a'b", 'a"b', "a b|c", "a&&b"]
LINE = ["a\nb", "a\rb", "a\x00b"]
HOSTILE_STRINGS = [*SHELL, *LINE, "..", "/srv/../etc", "x" * 5000]

# keys that take one of these strings on purpose, and why (each is quoted where it is used)
EXEMPT = {
    # each argument of the vLLM server: JSON configs (--kv-transfer-config '{"a": 1}') need quotes, braces and
    # spaces; they are shell-quoted one by one into the launcher (test_extra_args_stay_one_argument_each)
    "vllm_extra_args": set(SHELL) | {"..", "/srv/../etc"},
    # build environment values (CFLAGS='-O2 -march=...'): pyinfra quotes each export (its _env), never parsed
    "vllm_build_env": set(SHELL) | {"..", "/srv/../etc"},
}


def check(data: dict) -> list:
    return validate_inventory(Inventory(([("h1", {**GOOD, **data})], {})))


def hostile_values(key) -> list:
    """Values the key must refuse: hostile strings where it takes strings, the wrong type everywhere."""
    types = key.types if isinstance(key.types, tuple) else (key.types,)
    values: list = []
    if str in types:
        values += HOSTILE_STRINGS + [{"a": "b"}, ["a"]]
    if list in types:
        values += [[s] for s in HOSTILE_STRINGS] + ["a;b", {"a": "b"}, [{"a": "b"}]]
    if dict in types:
        values += [{s: "x"} for s in HOSTILE_STRINGS] + [{"NAME": s} for s in HOSTILE_STRINGS]
        values += ["a;b", ["a"], {"NAME": 1}]
    if int in types or float in types:
        values += ["8000", "$(id)", [1], {"a": 1}, True] if bool not in types else []
    if bool in types:
        values += ["yes", "$(id)", 1, [True]]
    exempt = EXEMPT.get(key.name, set())

    def refused(value):
        inner = value if isinstance(value, str) else None
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            inner = value[0]
        if isinstance(value, dict) and list(value) == ["NAME"] and isinstance(value["NAME"], str):
            inner = value["NAME"]
        return inner not in exempt

    return [v for v in values if refused(v)]


CASES = [(name, value) for name, key in schema.all_keys().items() for value in hostile_values(key)]


def _id(case):
    name, value = case
    return f"{name}-{repr(value)[:30]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_every_key_refuses_hostile_values_with_one_error(case):
    name, value = case
    errors = check({name: value})
    assert len(errors) == 1, [str(e) for e in errors]
    error = errors[0]
    assert (error.host, error.key, error.value) == ("h1", name, value), str(error)
    assert f"host 'h1': {name} = " in str(error)


def test_every_string_list_and_dict_key_has_an_allow_list():
    loose = [key.name for key in schema.all_keys().values()
             if key.check is None and key.choices is None and set(
                 key.types if isinstance(key.types, tuple) else (key.types,)) & {str, list, dict}]
    assert loose == []


def test_exemptions_are_keys_that_exist():
    assert set(EXEMPT) <= set(schema.all_keys())


@pytest.mark.parametrize("key,value", [
    ("torch_index_url", "https://mirror.example/whl/cpu?a=1&b=2"),
    ("armada_proxy", "http://user:p%40ss@proxy.example:3128"),
    ("vllm_host", "::"),
    ("nats_listen", "10.0.0.5"),
    ("etcd_listen", "cp.example.internal"),
    ("dynamo_nixl_host", "fe80::1"),
    ("vllm_git_url", "git://10.213.0.1/vllm"),  # git daemon: an air-gapped mirror (the lab serves one)
    ("vllm_git_commit", "0123abcd"),
    ("vllm_git_commit", "release/v0.31.0"),
    ("armada_install", "git+https://github.com/org/armada.git@v0.1.0"),
    ("armada_install", "armada[lab]==0.1.0"),
    ("armada_no_proxy", "localhost,127.0.0.1,.corp.example,10.0.0.0/8"),
    ("vllm_extra_requirements", ["plugin>=1.2,<2", "pkg @ https://wheels.example/pkg-1.0-py3-none-any.whl"]),
    ("armada_packages", ["htop", "linux-tools-generic=6.8.0-45.45", "libc6:arm64"]),
    ("vllm_extra_args", ["--kv-transfer-config", '{"kv_connector": "X", "a": "$HOME %h"}']),
    ("vllm_build_env", {"CFLAGS": "-O2 -march=armv8.2-a", "ACL_ROOT_DIR": "/opt/acl"}),
    ("model_name", "Qwen2.5-0.5B-Instruct"),
    ("model_id", "Qwen/Qwen2.5-0.5B-Instruct"),
])
def test_honest_values_pass(key, value):
    # an address beyond loopback is a good value; opening it needs a key or the opt-out (test_closed_by_default)
    assert check({key: value, "armada_insecure_open_endpoints": True}) == []


def test_nixl_ports_past_65535_name_host_and_key():
    data = {"armada_roles": ["base", "nats", "etcd", "vllm", "model", "vllm_service"], "armada_serving": "dynamo",
            "dynamo_worker_mode": "disaggregated", "dynamo_prefill_workers": 2, "dynamo_decode_workers": 2,
            "dynamo_nixl_base_port": 65533}
    errors = check(data)
    assert [(e.host, e.key, e.value) for e in errors] == [("h1", "dynamo_nixl_base_port", 65533)], errors
    assert "65536" in str(errors[0])
    assert check({**data, "dynamo_nixl_base_port": 65532}) == []


@pytest.mark.parametrize("value", [0, 70000, "22", "x", True, None])
def test_ssh_port_is_a_port(value):
    errors = check({"ssh_port": value})
    assert [(e.host, e.key, e.value) for e in errors] == [("h1", "ssh_port", value)]


def test_host_data_that_is_not_a_dict_names_the_host(tmp_path):
    path = tmp_path / "inv.py"
    path.write_text('hosts = [("h1", {"model_id": "org/m"}), ("h2", ["model_id", "org/m"])]\n')
    with pytest.raises(ValueError) as caught:
        load_inventory(str(path))
    assert "host 'h2'" in str(caught.value) and "dict" in str(caught.value)


# -- quoting where values are used --------------------------------------------


def test_an_index_url_with_a_query_stays_one_pip_argument():
    from types import SimpleNamespace

    from roles.vllm import _pip_source_args

    profile = SimpleNamespace(torch_index_url="https://mirror.example/whl/cpu?a=1&b=2")
    from pyinfra.api.command import StringCommand

    args = _pip_source_args(profile, "/opt/armada/wheel house", for_torch=True)
    line = StringCommand("pip", "install", *args, "torch==2.13.0").get_raw_value()
    assert shlex.split(line) == ["pip", "install", "--index-url=https://mirror.example/whl/cpu?a=1&b=2",
                                 "--find-links=/opt/armada/wheel house", "torch==2.13.0"]


def test_credentials_in_an_index_url_are_masked_in_printed_commands():
    from types import SimpleNamespace

    from pyinfra.api.command import StringCommand

    from roles.vllm import _pip_source_args

    profile = SimpleNamespace(torch_index_url="https://user:s3cret@mirror.example/simple")
    command = StringCommand("pip", "install", *_pip_source_args(profile, None, for_torch=True), "torch")
    assert "s3cret" not in str(command) and "user:***@" in str(command)
    assert "s3cret" in command.get_raw_value()


@pytest.mark.parametrize("value,masked", [
    ("http://user:pass@proxy:3128", "http://user:***@proxy:3128"),
    ("https://proxy.example:3128/", "https://proxy.example:3128/"),
    ("torch from https://u:p@idx.example/simple (set by data)", "torch from https://u:***@idx.example/simple (set by data)"),
])
def test_mask_url(value, masked):
    assert mask_url(value) == masked


def test_has_credentials():
    assert has_credentials("http://u:p@proxy:3128") and has_credentials("https://token@host/x")
    assert not has_credentials("http://proxy:3128") and not has_credentials(None)


def _sh_argv(script_line: str) -> list[str]:
    """The argv /bin/sh gives a command line (printed as JSON by python)."""
    probe = "import json, sys; print(json.dumps(sys.argv[1:]))"
    line = script_line.replace("exec PYTHON", f"exec python3 -c {shlex.quote(probe)}")
    return json.loads(subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=True).stdout)


def test_extra_args_stay_one_argument_each():
    """vllm_extra_args reach the launcher (armada-serve, /bin/sh) shell-quoted: sh gives vLLM the same argv."""
    hostile = ["--x", "a;b", "$(id)", "`id`", "a'b", 'a"b', "100%", "$HOME", "a b", '{"k": "$v %i"}']
    line = "exec " + " ".join(shlex.quote(a) for a in ["PYTHON", *hostile])
    assert _sh_argv(line) == hostile


@pytest.mark.parametrize("value", ["plain", "/a/b:c", "a b", 'a"b', "a\\b", "$HOME", "`id`", "100%", "a'b", ""])
def test_env_file_values_read_back(value):
    """Env file values, as systemd's EnvironmentFile and armada's own reader read them."""
    from armada.envfile import parse

    line = f"NAME={systemd_env_value(value)}"
    assert parse(line + "\n") == {"NAME": value}


def test_env_values_with_a_line_break_are_refused():
    with pytest.raises(ValueError):
        systemd_env_value("a\nB=c")
