"""``armada``: the offline commands (snapshot, profile, check).

Deploys themselves run through pyinfra: ``pyinfra INVENTORY deploys/llm.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from armada import registry
from armada.cloudinit import CloudInitError, render
from armada.errors import DataError
from armada.inventory import group_summaries, load_inventory, validate_inventory
from armada.masking import mask_url
from armada.lab.commands import add_parser as add_lab_parser
from armada.parsers import ParseError
from armada.parsers.host import host_facts_from_outputs
from armada.paths import shared
from armada.profile import build_profile
from armada.schema import validate_host_data, with_defaults
from armada.snapshot import read_snapshot, take_snapshots

EXIT_BAD_INPUT = 2


def _parse_data(pairs: list[str]) -> dict:
    data = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise SystemExit(f"armada: --data wants KEY=VALUE, got {pair!r}")
        try:
            data[key] = json.loads(raw)
        except ValueError:
            data[key] = raw
    return data


def cmd_profile(args) -> int:

    try:
        outputs = read_snapshot(args.folder)
        if not any(text.strip() for text in outputs.values()):
            raise ParseError("no usable output (lscpu.txt, cpuinfo.txt, meminfo.txt, ...) in the folder")
        facts = host_facts_from_outputs(outputs)
    except (OSError, ParseError) as exc:
        print(f"armada profile: {args.folder}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    host = args.host or args.folder.rstrip("/").rsplit("/", 1)[-1]
    data = _parse_data(args.data)
    errors = validate_host_data(host, data, complete=False)
    try:
        if errors:
            raise errors[0]
        profile = build_profile(host, facts, with_defaults(data))
    except DataError as exc:
        print(f"armada profile: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(mask_url(json.dumps(profile.to_json(), indent=2)))
    return 0


def _cause(exc: BaseException) -> str:
    """The user's own error inside pyinfra's wrapper for inventory-file exceptions."""
    inner = getattr(exc, "exception", None)
    if isinstance(inner, BaseException):
        return f"{type(inner).__name__}: {inner}"
    try:
        return str(exc)
    except Exception:
        return type(exc).__name__


def cmd_check(args) -> int:

    try:
        inventory = load_inventory(args.inventory)
    except Exception as exc:  # an inventory is user Python: any error is bad input
        print(f"armada check: cannot load inventory {args.inventory!r}: {_cause(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    errors = validate_inventory(inventory)
    if errors:
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"armada check: {len(errors)} error(s) in {args.inventory}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for line in group_summaries(inventory, args.inventory):
        print(line)
    return 0


def cmd_snapshot(args) -> int:

    try:
        results = take_snapshots(args.inventory, args.outdir)
    except FileNotFoundError as exc:
        print(f"armada snapshot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    failed = 0
    for host, where in results.items():
        print(f"{host}: {where}")
        failed += where.startswith("error")
    return 1 if failed else 0


def cmd_cloud_init(args) -> int:

    bake = {}
    for pair in args.bake_secret:
        key, sep, variable = pair.partition("=")
        if not sep or not variable:
            print(f"armada cloud-init: --bake-secret {pair!r}: expected KEY=ENVVAR", file=sys.stderr)
            return EXIT_BAD_INPUT
        bake[key] = variable
    try:
        inventory = load_inventory(args.inventory)
        text, warnings = render(inventory, args.inventory, args.group, bake)
    except CloudInitError as exc:
        print(f"armada cloud-init: {args.inventory}, group {args.group!r}: nothing rendered:\n{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # an inventory is user Python: any error is bad input
        print(f"armada cloud-init: cannot load inventory {args.inventory!r}: {_cause(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for warning in warnings:
        print(warning, file=sys.stderr)
    sys.stdout.write(text)
    return 0


def cmd_path(args) -> int:

    try:
        print(shared(args.relative))
    except FileNotFoundError as exc:
        print(f"armada path: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def keys_table() -> str:
    """The data keys as a Markdown table (README.md carries it), from the registry."""
    rows = ["| key | type | default | role | what it is for |", "| --- | --- | --- | --- | --- |"]
    for owner, key in registry.keys_by_role():
        doc = key.doc + (f" (one of: {', '.join(map(str, key.choices))})" if key.choices else "")
        rows.append(f"| `{key.name}` | {key.type_name()} | `{key.default!r}` | {owner} | {doc} |")
    return "\n".join(rows)


def cmd_keys(args) -> int:
    if args.update:

        with open(args.update, encoding="utf-8") as handle:
            text = handle.read()
        block = f"<!-- keys:start -->\n{keys_table()}\n<!-- keys:end -->"
        text = re.sub(r"<!-- keys:start -->.*?<!-- keys:end -->", lambda _: block, text, flags=re.S)
        with open(args.update, "w", encoding="utf-8") as handle:
            handle.write(text)
        return 0
    print(keys_table())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="armada", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("snapshot", help="save each host's raw facts outputs, one folder per host")
    p.add_argument("inventory")
    p.add_argument("outdir")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("profile", help="print the serving profile of one host's snapshot folder as JSON")
    p.add_argument("folder")
    p.add_argument("--host", help="host name for messages (default: the folder name)")
    p.add_argument("--data", action="append", default=[], metavar="KEY=VALUE", help="data overrides (JSON values)")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("check", help="validate an inventory's data without connecting to any host")
    p.add_argument("inventory")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("keys", help="print the inventory data keys, defaults and meaning as a Markdown table")
    p.add_argument("--update", metavar="README", help="rewrite the table between the keys markers of this file")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("upgrade", help="rolling upgrade: build beside, flip host by host, roll back and stop on failure")
    p.add_argument("inventory")
    p.add_argument("pyinfra_args", nargs=argparse.REMAINDER, help="after --: passed to each pyinfra run (e.g. --data K=V)")
    p.set_defaults(func=lambda a: __import__("armada.upgrade", fromlist=["main"]).main(a))

    p = sub.add_parser("cloud-init", help="print #cloud-config user-data: the instance installs armada and deploys "
                       "itself with a group's data (pyinfra @local)")
    p.add_argument("inventory")
    p.add_argument("group")
    p.add_argument("--bake-secret", action="append", default=[], metavar="KEY=ENVVAR",
                   help="put the value of ENVVAR into the user-data as the file KEY names (vllm_api_key_file, "
                   "model_hub_token_file, nats_password_file, etcd_password_file): in clear, with a warning; prefer your cloud's secret delivery")
    p.set_defaults(func=cmd_cloud_init)

    p = sub.add_parser("path", help="where this armada's shipped file is (e.g. deploys/llm.py)")
    p.add_argument("relative")
    p.set_defaults(func=cmd_path)


    add_lab_parser(sub)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
