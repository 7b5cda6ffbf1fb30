"""The lab's tiny model: a real Hugging Face Llama folder, made without any hub."""

import hashlib
import json
import os

from armada.lab.model import make_tiny_llama
from armada.schema import validate_host_data


def digest(folder):
    sha = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as handle:
            sha.update(name.encode() + handle.read())
    return sha.hexdigest()


def test_tiny_llama_is_deterministic_and_servable_shape(tmp_path):
    first = make_tiny_llama(str(tmp_path / "a"))
    second = make_tiny_llama(str(tmp_path / "b"))
    assert digest(first) == digest(second)
    with open(os.path.join(first, "config.json")) as handle:
        config = json.load(handle)
    assert config["architectures"] == ["LlamaForCausalLM"]
    # vLLM's CPU attention refuses head_dim 16; 64 works (LAB.md)
    assert config["hidden_size"] // config["num_attention_heads"] == 64
    for name in ("tokenizer.json", "tokenizer_config.json", "model.safetensors", "generation_config.json"):
        assert os.path.getsize(os.path.join(first, name)) > 0
    with open(os.path.join(first, "tokenizer_config.json")) as handle:
        assert "chat_template" in json.load(handle)
    # and it is a model folder the schema accepts as model_path
    assert validate_host_data("h", {"model_path": first}) == []


def test_a_larger_shape_writes_the_tensors_its_parameter_count_says(tmp_path):
    """bench/lab_tuning.py's model is a Shape; the count it prints is the sum of the tensors written
    (checked on a shape small enough for a unit test, with grouped KV heads)."""
    from safetensors.numpy import load_file

    from armada.lab.model import BENCH, Shape

    shape = Shape("t", hidden=256, heads=4, kv_heads=2, layers=3, intermediate=512, max_positions=1024)
    folder = make_tiny_llama(str(tmp_path / "m"), shape=shape)
    tensors = load_file(os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json")) as handle:
        config = json.load(handle)
    assert sum(t.size for t in tensors.values()) == shape.parameters(config["vocab_size"])
    assert tensors["model.layers.2.self_attn.k_proj.weight"].shape == (128, 256)
    assert (config["num_hidden_layers"], config["num_key_value_heads"], config["max_position_embeddings"]) == (3, 2, 1024)
    assert BENCH.head_dim == 64 and 0.2e9 < BENCH.parameters() < 0.4e9
