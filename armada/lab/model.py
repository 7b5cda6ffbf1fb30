"""The lab's model: a tiny random-weight Llama that vLLM can really serve.

The lab may not download anything from a model hub, yet a real serving test
needs a real Hugging Face model folder. This module writes one from nothing:

- a byte-level BPE tokenizer (``tokenizers``) trained on a few dozen built-in
  English sentences, with ``<s>``, ``</s>``, ``<unk>``, ``<pad>`` and a small
  Jinja chat template;
- a ``LlamaForCausalLM`` config (hidden 128, 2 heads of head_dim 64 -- vLLM's
  CPU attention refuses head_dim 16 --, 2 layers);
- ``model.safetensors`` with every weight the architecture expects, drawn from
  numpy's seeded Generator (normal, std 0.02; norms = 1), float32.

It needs only numpy, safetensors and tokenizers (no torch, no transformers),
so the test side can build the model without the serving stack. The output is
deterministic: the same seed gives the same bytes. The weights are random, so
the replies are gibberish; the point is that the engine loads, runs and
answers.

    python -m armada.lab.model OUTDIR [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

BOS, EOS, UNK, PAD = "<s>", "</s>", "<unk>", "<pad>"
SPECIAL_TOKENS = [BOS, EOS, UNK, PAD]  # the trainer gives them ids 0..3 in this order

VOCAB_SIZE = 512
RMS_NORM_EPS = 1e-6
ROPE_THETA = 10000.0
INIT_STD = 0.02


@dataclass(frozen=True)
class Shape:
    """A Llama's size. head_dim = hidden / heads stays 64: vLLM's CPU attention refuses head_dim 16."""
    name: str
    hidden: int
    heads: int
    kv_heads: int
    layers: int
    intermediate: int
    max_positions: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def parameters(self, vocab_size: int = VOCAB_SIZE) -> int:
        attention = 2 * self.hidden * self.heads * self.head_dim + 2 * self.hidden * self.kv_heads * self.head_dim
        per_layer = attention + 3 * self.hidden * self.intermediate + 2 * self.hidden
        return 2 * vocab_size * self.hidden + self.layers * per_layer + self.hidden


# the lab's serving tests: loads in seconds, answers gibberish
TINY = Shape("tiny", hidden=128, heads=2, kv_heads=2, layers=2, intermediate=256, max_positions=512)
# bench/lab_tuning.py: large enough that a 2-core host is compute-bound (about 0.25 G parameters, 1 GB in float32)
BENCH = Shape("bench", hidden=1024, heads=16, kv_heads=16, layers=20, intermediate=2816, max_positions=2048)
SHAPES = {shape.name: shape for shape in (TINY, BENCH)}

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] + ': ' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A small model can still answer a question, even if the answer makes no sense.",
    "The server starts, loads the weights and listens on a port.",
    "Every host in the lab boots with systemd and runs an SSH daemon.",
    "Hello, how are you today?",
    "I am fine, thank you. How can I help you?",
    "Please tell me a short story about a cat and a boat.",
    "Once upon a time there was a cat who wanted to sail across the sea.",
    "The weather is cold in the morning and warm in the afternoon.",
    "She opened the window and looked at the mountains in the distance.",
    "He wrote a letter to his friend and walked to the post office.",
    "The children played in the garden until the sun went down.",
    "What is the capital of France? The capital of France is Paris.",
    "Two plus two is four, and three times three is nine.",
    "Water boils at one hundred degrees at sea level.",
    "The library opens at nine and closes at six in the evening.",
    "We need more coffee before the meeting starts.",
    "The train to the city leaves from platform number seven.",
    "A good test checks a real answer, not only a status page.",
    "The engine reads the prompt, computes the next token and repeats.",
    "Keep the configuration simple and write down what you changed.",
    "The red house at the end of the street has a blue door.",
    "My favourite food is bread with butter and a little honey.",
    "The river runs through the valley and into the lake.",
    "Can you explain how a computer stores numbers in memory?",
    "Numbers are stored as bits, and bits are grouped into bytes.",
    "The birds sing early in the spring and fly south in the autumn.",
    "Thank you for your help, I will try it again tomorrow.",
    "The doctor said that he should rest and drink a lot of water.",
    "Our team finished the work on time and went home happy.",
    "The old clock on the wall stopped at midnight.",
    "Reading a book on a rainy day is one of the best things in life.",
    "The market sells fresh fruit, vegetables, fish and flowers.",
    "If the door is locked, ask the guard for the key.",
    "The student asked a question and the teacher gave a clear answer.",
    "Light travels faster than sound, so we see lightning before thunder.",
    "The program printed an error and then exited with status one.",
    "Let us meet at the station at half past eight.",
    "The ship carried wood, salt and wine to the northern islands.",
    "Goodbye, and have a nice day!",
]


def _train_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    # A plain (non-chat) encode starts with <s>, as Llama tokenizers do; the
    # chat template writes bos_token itself and vLLM then encodes without
    # special tokens, so a chat prompt has exactly one <s>.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B:1",
        special_tokens=[(BOS, bos_id)],
    )
    return tok


def _weights(vocab_size: int, seed: int, shape: Shape) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(INIT_STD)).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones((n,), dtype=np.float32)

    # Draw in a fixed order so that a seed always gives the same tensors.
    hidden, q, kv, inter = shape.hidden, shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim, shape.intermediate
    w: dict[str, np.ndarray] = {"model.embed_tokens.weight": normal(vocab_size, hidden)}
    for i in range(shape.layers):
        p = f"model.layers.{i}"
        w[f"{p}.self_attn.q_proj.weight"] = normal(q, hidden)
        w[f"{p}.self_attn.k_proj.weight"] = normal(kv, hidden)
        w[f"{p}.self_attn.v_proj.weight"] = normal(kv, hidden)
        w[f"{p}.self_attn.o_proj.weight"] = normal(hidden, q)
        w[f"{p}.mlp.gate_proj.weight"] = normal(inter, hidden)
        w[f"{p}.mlp.up_proj.weight"] = normal(inter, hidden)
        w[f"{p}.mlp.down_proj.weight"] = normal(hidden, inter)
        w[f"{p}.input_layernorm.weight"] = ones(hidden)
        w[f"{p}.post_attention_layernorm.weight"] = ones(hidden)
    w["model.norm.weight"] = ones(hidden)
    w["lm_head.weight"] = normal(vocab_size, hidden)
    return w


def _write_json(path: str, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def make_tiny_llama(outdir: str, seed: int = 0, shape: Shape = TINY) -> str:
    """Write a random-weight LlamaForCausalLM folder of ``shape`` (the lab's tiny one by default) to
    ``outdir``; return ``outdir``."""
    os.makedirs(outdir, exist_ok=True)

    tok = _train_tokenizer()
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    bos_id, eos_id, pad_id = (tok.token_to_id(t) for t in (BOS, EOS, PAD))
    tok.save(os.path.join(outdir, "tokenizer.json"))

    _write_json(
        os.path.join(outdir, "tokenizer_config.json"),
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOS,
            "eos_token": EOS,
            "unk_token": UNK,
            "pad_token": PAD,
            "model_max_length": shape.max_positions,
            "clean_up_tokenization_spaces": False,
            "chat_template": CHAT_TEMPLATE,
        },
    )
    _write_json(
        os.path.join(outdir, "special_tokens_map.json"),
        {"bos_token": BOS, "eos_token": EOS, "unk_token": UNK, "pad_token": PAD},
    )

    _write_json(
        os.path.join(outdir, "config.json"),
        {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": vocab_size,
            "hidden_size": shape.hidden,
            "intermediate_size": shape.intermediate,
            "num_hidden_layers": shape.layers,
            "num_attention_heads": shape.heads,
            "num_key_value_heads": shape.kv_heads,
            "head_dim": shape.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": shape.max_positions,
            "initializer_range": INIT_STD,
            "rms_norm_eps": RMS_NORM_EPS,
            "rope_theta": ROPE_THETA,
            "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA},
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "pretraining_tp": 1,
            "use_cache": True,
            "tie_word_embeddings": False,
            "bos_token_id": bos_id,
            "eos_token_id": eos_id,
            "pad_token_id": pad_id,
            "torch_dtype": "float32",
        },
    )
    _write_json(
        os.path.join(outdir, "generation_config.json"),
        {"bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id},
    )

    save_file(_weights(vocab_size, seed, shape), os.path.join(outdir, "model.safetensors"), metadata={"format": "pt"})
    return outdir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m armada.lab.model",
        description="Write a random-weight Llama model folder for the lab (no hub download).",
    )
    parser.add_argument("outdir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny",
                        help="tiny: the lab's serving tests; bench: bench/lab_tuning.py's compute-bound model")
    args = parser.parse_args(argv)
    print(make_tiny_llama(args.outdir, seed=args.seed, shape=SHAPES[args.shape]))


if __name__ == "__main__":
    main()
