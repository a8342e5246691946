"""Shared helpers for the deployment tests: helm, kubectl and schema validation."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "k8s" / "helm" / "pea"
KUSTOMIZE = ROOT / "k8s"
TOOLS = ROOT / ".tools" / "bin"
K8S_VERSION = "1.33.0"
# CRDs that kubernetes-validate has no schema for; their shape is asserted by hand.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make deploy-tools` (make test does it first)")
    return str(path)


def run(argv: list[str], cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def helm_template(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(
        [tool("helm"), "template", "pea", str(CHART), "--namespace", "signal", *args],
        check=check,
    )


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def render(*args: str) -> list[dict[str, Any]]:
    return docs(helm_template(*args).stdout)


def kustomize(path: Path) -> list[dict[str, Any]]:
    return docs(run([tool("kubectl"), "kustomize", str(path)]).stdout)


def find(objs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def kinds(objs: Iterable[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objs)


def validate(objs: Iterable[dict[str, Any]]) -> list[str]:
    """Strict schema validation for Kubernetes K8S_VERSION; returns the CRD kinds skipped."""
    import kubernetes_validate

    skipped = []
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            skipped.append(obj["kind"])
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} is invalid: {exc}")
    return skipped


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        if c["name"] == name:
            return dict(c)
    raise AssertionError(f"no container {name}")


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def nginx_exe() -> str:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(exe).exists():
        pytest.fail("nginx is missing: run `make system-deps`")
    return exe


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"spec.ports[0].port": 80, ...}: one entry per leaf, for readable diffs."""
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(node, list) and node:
        out = {}
        for i, v in enumerate(node):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: node}
