"""Bad input stops before anything changes, with one clear error naming host,
key and value: 40 malformed inventories and data sets through the same
validation `armada check` and every deploy run first (armada.deploy.
check_inventory, at plan time, before pyinfra executes any operation; the
lab and @local tests show a deploy stopping there)."""

import textwrap

import pytest
from conftest import armada, build_profile

from armada.errors import DataError
from armada.inventory import DataFileError, load_data, load_inventory, validate_inventory
from armada.parsers.host import host_facts_from_outputs

GOOD = {"model_id": "org/model"}
MISSING = "/nonexistent/armada-test"

# name: (data for host h1, key, value named in the error, words in the message)
CASES = {
    "port_is_a_string": ({"vllm_port": "8000"}, "vllm_port", "8000", "must be of type int"),
    "port_too_high": ({"vllm_port": 70000}, "vllm_port", 70000, "1-65535"),
    "port_zero": ({"nats_port": 0}, "nats_port", 0, "1-65535"),
    "port_is_a_bool": ({"etcd_client_port": True}, "etcd_client_port", True, "not a bool"),
    "two_services_one_port": ({"vllm_port": 4222}, "vllm_port", 4222, "the same port as nats_port"),
    "monitor_on_client_port": ({"nats_monitor_port": 4222}, "nats_monitor_port", 4222, "the same port as nats_port"),
    "etcd_peer_on_client_port": ({"etcd_peer_port": 2379}, "etcd_peer_port", 2379, "the same port as etcd_client_port"),
    "unknown_key": ({"vllm_prot": 8000}, "vllm_prot", 8000, "did you mean 'vllm_port'"),
    "unknown_key_far": ({"colour": "blue"}, "colour", "blue", "unknown data key"),
    "unknown_role": ({"armada_roles": ["base", "vllm2"]}, "armada_roles", ["base", "vllm2"], "unknown role"),
    "roles_not_a_list": ({"armada_roles": "base"}, "armada_roles", "base", "must be of type list"),
    "service_without_vllm": ({"armada_roles": ["base", "vllm_service"]}, "armada_roles", ["base", "vllm_service"],
                             "needs the vllm and model roles"),
    "unknown_strategy": ({"vllm_strategy": "conda"}, "vllm_strategy", "conda", "must be one of"),
    "spec_does_not_parse": ({"vllm_spec": "vllm==="}, "vllm_spec", "vllm===", "requirement"),
    "spec_pins_another_version": ({"vllm_spec": "vllm==0.32.0"}, "vllm_spec", "vllm==0.32.0", "vllm_version"),
    "version_not_a_version": ({"vllm_version": "latest"}, "vllm_version", "latest", "version"),
    "wheelhouse_missing": ({"vllm_wheelhouse": MISSING}, "vllm_wheelhouse", MISSING, "neither a URL nor"),
    "wheel_strategy_no_wheelhouse": ({"vllm_strategy": "wheel"}, "vllm_wheelhouse", None, "needs a wheelhouse"),
    "source_to_a_url": ({"vllm_strategy": "source", "vllm_wheelhouse": "https://wheels.example/x"}, "vllm_wheelhouse",
                        "https://wheels.example/x", "publishes its builds to a folder"),
    "model_path_missing": ({"model_id": None, "model_path": MISSING}, "model_path", MISSING, "no such folder"),
    "no_model": ({"model_id": None}, "model_id", None, "no model"),
    "gpu_share_above_one": ({"vllm_gpu_memory_utilization": 1.5}, "vllm_gpu_memory_utilization", 1.5, ""),
    "kv_cache_zero": ({"vllm_kvcache_space_gib": 0}, "vllm_kvcache_space_gib", 0, ">= 1"),
    "tp_zero": ({"vllm_tensor_parallel_size": 0}, "vllm_tensor_parallel_size", 0, ">= 1"),
    "unknown_dtype": ({"vllm_dtype": "fp8"}, "vllm_dtype", "fp8", "must be one of"),
    "control_plane_unknown": ({"armada_control_plane": "cp-9"}, "armada_control_plane", "cp-9", "no such host"),
    "cluster_group_unknown": ({"etcd_cluster_group": "etcds"}, "etcd_cluster_group", "etcds", "no such group"),
    "proxy_not_a_url": ({"armada_proxy": "proxy:8888"}, "armada_proxy", "proxy:8888", "URL"),
    "index_not_http": ({"torch_index_url": "ftp://mirror/simple"}, "torch_index_url", "ftp://mirror/simple", ""),
    "root_relative": ({"armada_root": "opt/armada"}, "armada_root", "opt/armada", "absolute"),
    "user_with_space": ({"armada_user": "llm user"}, "armada_user", "llm user", ""),
    "ca_cert_missing": ({"armada_ca_certs": [MISSING + ".crt"]}, "armada_ca_certs", [MISSING + ".crt"], "no such file"),
    "exclude_not_names": ({"vllm_exclude_deps": [1, 2]}, "vllm_exclude_deps", [1, 2], "package names"),
    "build_env_not_strings": ({"vllm_build_env": {"MAX_JOBS": 4}}, "vllm_build_env", {"MAX_JOBS": 4}, "strings"),
    "api_key_file_relative": ({"vllm_api_key_file": "keys/api"}, "vllm_api_key_file", "keys/api", "absolute"),
    "fabricmanager_typo": ({"nvidia_fabricmanager": "maybe"}, "nvidia_fabricmanager", "maybe", "must be one of"),
    "imex_as_string": ({"nvidia_imex": "true"}, "nvidia_imex", "true", "must be of type bool"),
    "nats_release_without_url": ({"nats_source": "release", "nats_release_sha256": "0" * 64}, "nats_release_url", None,
                                 "needs nats_release_url"),
    "nats_release_without_sha": ({"nats_source": "release", "nats_release_url": "https://mirror/nats.tar.gz"},
                                 "nats_release_sha256", None, "needs nats_release_sha256"),
    "ssh_keys_unchecked": ({"ssh_strict_host_key_checking": "no"}, "ssh_strict_host_key_checking", "no",
                           "armada_allow_unverified_ssh"),
    "keep_one_install": ({"vllm_keep_installs": 1}, "vllm_keep_installs", 1, ">= 2"),
    "open_vllm_without_key": ({"vllm_host": "0.0.0.0"}, "vllm_host", "0.0.0.0", "no vllm_api_key_file"),
    "open_nats_without_password": ({"armada_roles": ["base", "nats"], "nats_listen": "10.0.0.5"}, "nats_listen",
                                   "10.0.0.5", "no nats_password_file"),
    "open_etcd_without_password": ({"armada_roles": ["base", "etcd"], "etcd_listen": "::"}, "etcd_listen", "::",
                                   "no etcd_password_file"),
}


def write_inventory(folder, data):
    path = folder / "inv.py"
    path.write_text(textwrap.dedent(f"""
        serving = (["h1"], {{**{GOOD!r}, **{data!r}}})
        other = (["h2"], {GOOD!r})
    """))
    return str(path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_clear_error_naming_host_key_and_value(case, tmp_path):
    data, key, value, words = CASES[case]
    errors = validate_inventory(load_inventory(write_inventory(tmp_path, data)))
    assert len(errors) == 1, [str(e) for e in errors]
    error = errors[0]
    assert (error.host, error.key, error.value) == ("h1", key, value), str(error)
    assert f"host 'h1': {key} = {value!r}" in str(error) and words in str(error), str(error)


def test_unchecked_ssh_only_with_the_documented_opt_out(tmp_path):
    data = {"ssh_strict_host_key_checking": "off", "armada_allow_unverified_ssh": True}
    assert validate_inventory(load_inventory(write_inventory(tmp_path, data))) == []


def test_there_are_at_least_thirty(tmp_path):
    """Thirty different refusals or more, counted from what the product says
    (not from the length of this table): each case's errors as
    validate_inventory words them, one (key, message) per kind of bad input.
    A check the product lost, or kinds of bad input it no longer tells apart,
    count less."""
    refusals = set()
    for case, (data, *_) in CASES.items():
        folder = tmp_path / case
        folder.mkdir()
        refusals |= {(e.key, e.message) for e in validate_inventory(load_inventory(write_inventory(folder, data)))
                     if e.host == "h1"}
    assert len(refusals) >= 30, sorted(refusals)


def test_armada_check_prints_it_and_exits_2(tmp_path):
    result = armada("check", write_inventory(tmp_path, {"vllm_port": 70000}), cwd=str(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    assert "host 'h1': vllm_port = 70000" in result.stderr and "1 error(s)" in result.stderr


def test_tensor_parallel_above_the_gpus_is_refused_from_the_hosts_facts():
    from conftest import host_dir

    from armada.snapshot import read_snapshot

    facts = host_facts_from_outputs(read_snapshot(host_dir("gh200")))
    with pytest.raises(DataError) as error:
        build_profile("gh-1", facts, {"vllm_tensor_parallel_size": 2})
    assert (error.value.host, error.value.key, error.value.value) == ("gh-1", "vllm_tensor_parallel_size", 2)


@pytest.mark.parametrize("name, text, where", [
    ("bad.yaml", "vllm_port: 8000\nmodel_id: [org/model\n", "line 3 column 1"),
    ("tabs.yaml", "vllm_port: 8000\n\tmodel_id: x\n", "line 2 column 1"),
    ("bad.json", '{"vllm_port": 8000,\n "model_id": }\n', "line 2 column 14"),
    ("list.yaml", "- vllm_port\n", "the top level must map key names"),
])
def test_data_files_that_do_not_parse_name_file_line_and_column(tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataFileError) as error:
        load_data(str(path))
    assert str(path) in str(error.value) and where in str(error.value), str(error.value)
    inventory = tmp_path / "inv.py"
    inventory.write_text(f"from armada.inventory import load_data\nserving = (['h1'], load_data({str(path)!r}))\n")
    result = armada("check", str(inventory), cwd=str(tmp_path))
    assert result.returncode == 2 and str(path) in result.stderr and where in result.stderr, result.stderr


def test_a_good_data_file_loads(tmp_path):
    path = tmp_path / "graviton.yaml"
    path.write_text("model_id: org/model\nvllm_port: 8001\nvllm_exclude_deps: [torchvision]\n")
    assert load_data(str(path)) == {"model_id": "org/model", "vllm_port": 8001, "vllm_exclude_deps": ["torchvision"]}
