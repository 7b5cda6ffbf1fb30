"""``armada lab up|down|status|scenario``: the local lab of three nspawn hosts (see armada.lab.hosts).

Wired into armada/cli.py with::

    from armada.lab.commands import add_parser as add_lab_parser
    add_lab_parser(subparsers)
"""

from __future__ import annotations

import argparse
import sys

from armada.lab import hosts

EXIT_FAILED = 1


def _table(rows: list[dict]) -> str:
    header = ("HOST", "ARCH", "ADDRESS", "RUNNING", "SSH")
    lines = [header]
    for row in rows:
        lines.append((
            row["name"], row["arch"], row["address"],
            f"yes (pid {row['pid']})" if row["running"] else "no",
            "ok" if row["ssh"] else "-",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def cmd_lab(args) -> int:
    # scenarios and assets make the lab's model: numpy, safetensors and
    # tokenizers (the [lab] extra), needed by these commands only, not by armada
    if args.lab_action == "scenario":
        from armada.lab import scenarios

        try:
            return scenarios.run_step(args.scenario, args.step)
        except (scenarios.ScenarioError, hosts.LabError) as exc:
            print(f"armada lab scenario: {exc}", file=sys.stderr)
            return EXIT_FAILED
    try:
        if args.lab_action == "up":
            from armada.lab.assets import ensure_assets  # the [lab] extra, as above

            hosts.up(light=args.light)
            ensure_assets()
        elif args.lab_action == "down":
            hosts.down()
            return 0
    except hosts.LabError as exc:
        print(f"armada lab {args.lab_action}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    rows = hosts.status()
    print(_table(rows))
    print(f"inventory: inventories/local.py   key: {hosts.key_path()}   proxy: {hosts.PROXY_URL}")
    if args.lab_action == "up" and not all(row["running"] and row["ssh"] for row in rows):
        return EXIT_FAILED
    if args.lab_action == "status" and args.check and not all(row["running"] and row["ssh"] for row in rows):
        return EXIT_FAILED
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "lab",
        help="local lab: an aarch64 (emulated) and two x86_64 Debian hosts booted with systemd-nspawn",
        description=(
            "Three real Debian hosts for armada's deploys and tests: armada-cp (aarch64, qemu) at "
            "10.213.0.11, armada-serve and armada-serve2 (x86_64) at 10.213.0.12 and .13, on bridge armadabr0, egress through "
            "tinyproxy on 10.213.0.1:8888. Needs root. Lab dir: $ARMADA_LAB_DIR (default /var/tmp/armada-lab)."
        ),
    )
    actions = parser.add_subparsers(dest="lab_action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="build root filesystems once, boot every host, wait for SSH (idempotent)")
    up.add_argument("--light", type=int, default=None, metavar="N",
                    help="light hosts from now on (armada-light1..N at 10.213.0.101..: x86_64, no vLLM, for "
                         "control-plane and base roles); default: as many as the lab has (0 at first)")
    actions.add_parser("down", help="stop the hosts, remove network and rootfs copies (keeps the cache and key)")
    scenario = actions.add_parser(
        "scenario", help="one step of a role scenario's lifecycle on the lab (what Molecule's playbooks call)")
    scenario.add_argument("scenario", help="llm, base, tcmalloc, nats, etcd, vllm, model, vllm_service")
    scenario.add_argument("step", choices=("create", "converge", "idempotence", "verify", "destroy"))
    status = actions.add_parser("status", help="per host: arch, address, running, SSH")
    status.add_argument("--check", action="store_true", help="exit non-zero unless every host runs and answers SSH")
    parser.set_defaults(func=cmd_lab)
    return parser
