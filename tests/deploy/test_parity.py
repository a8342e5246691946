"""The kustomize manifests and the Helm chart deploy the same pea.

Both are kept (operators use either; docs/deploy.md): neither is generated from
the other, so this test renders both and compares what an operator relies on:
every object (kind and name), images (name, not tag), commands, the effective
PEA_* settings (parsed by pea's own config, defaults included), ports, probes,
security contexts, resources, Services, NetworkPolicies, PDB, the built-in Redis
and, for the production overlay, Ingress and HPA. Changing one side only fails
here; a difference on purpose goes in KNOWN_DIFFERENCES with its reason.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

import pea
from pea.config import load_settings

from .helpers import KUSTOMIZE, flatten, kustomize, render

Objs = list[dict[str, Any]]

# Values that make the chart the kustomize base: the Secret the base's README
# steps create (the chart would otherwise create its own).
BASE_VALUES = ["--set", "secret.existingSecret=pea"]
# ...and the production overlay: its image, namespace, ingress, HPA and proxies.
PRODUCTION_VALUES = [
    *BASE_VALUES,
    "--namespace", "pea",
    "--set", "image.repository=registry.example.com/pea",
    "--set", "ingress.enabled=true",
    "--set", "ingress.host=pea.example.com",
    "--set", "autoscaling.enabled=true",
    "--set", "config.trustedProxies=10.244.0.0/16",
]  # fmt: skip

# Labels only Helm sets (release bookkeeping; the instance label lets two
# releases share a namespace). They name objects, they do not change behaviour.
HELM_ONLY_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
}

# Differences on purpose, which normalise() removes before comparing:
# - Helm's release labels (HELM_ONLY_LABELS), also in selectors: Helm adds the
#   release name so two releases can share a namespace.
# - metadata.namespace: kustomize overlays write it, Helm takes `helm install -n`.
# - The ConfigMap: kustomize names it pea-config-<content hash>, Helm names it
#   after the release and rolls pods with a checksum/config annotation; what the
#   pods get from it is compared instead (the effective settings).
# - Kubernetes defaults written out on one side only (probe timings,
#   imagePullPolicy of a pinned tag): filled in on both.
# - The image tag: each side's default is the release (test below), an operator
#   sets their own.
# - `helm test` hook pods: not deployed by install.
# Any other difference on purpose: (object, flattened path) -> reason. The test
# asserts each one still differs, so a stale entry is noticed too. None today.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}

PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}


def _strip_labels(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_labels(v) for k, v in node.items() if k not in HELM_ONLY_LABELS}
    if isinstance(node, list):
        return [_strip_labels(v) for v in node]
    return node


def _effective_settings(c: dict[str, Any], configmaps: dict[str, dict[str, str]]) -> Any:
    """The PEA_* settings the container runs with, as pea parses them."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    refs: dict[str, Any] = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            refs[e["name"]] = e["valueFrom"]
    plain = {k: v for k, v in env.items() if k.startswith("PEA_")}
    settings = dataclasses.asdict(load_settings(environ=plain))
    return {"settings": settings, "from_secrets": refs}


def _normalise_container(c: dict[str, Any], configmaps: dict[str, dict[str, str]]) -> None:
    name, _, tag = c["image"].rpartition(":")
    c["image"] = name
    # Kubernetes' own default for a pinned tag: explicit or not, it is the same.
    c.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in c:
            c[probe] = {**PROBE_DEFAULTS, **c[probe]}
    env = _effective_settings(c, configmaps)
    c.pop("envFrom", None)
    c["env"] = env


def normalise(objs: Objs) -> dict[str, Any]:
    """Objects by "Kind/name", reduced to what behaves the same on both sides."""
    configmaps = {o["metadata"]["name"]: o["data"] for o in objs if o["kind"] == "ConfigMap"}
    out: dict[str, Any] = {}
    for obj in objs:
        meta = obj["metadata"]
        if "helm.sh/hook" in meta.get("annotations", {}):
            continue  # `helm test` pods are not part of the deployment
        if obj["kind"] == "ConfigMap":
            continue  # compared as effective settings in each container
        o = _strip_labels(copy.deepcopy(obj))
        # Helm takes the namespace from `helm install -n`, not from the objects.
        o["metadata"] = {k: v for k, v in o["metadata"].items() if k in ("name", "annotations")}
        if o["kind"] == "Deployment":
            template = o["spec"]["template"]
            template["metadata"].pop("annotations", None)  # checksum/config vs hashed name
            for c in template["spec"]["containers"]:
                _normalise_container(c, configmaps)
        out[f"{o['kind']}/{o['metadata']['name']}"] = o
    return out


def compare(kustomized: Objs, helm: Objs) -> None:
    k, h = normalise(kustomized), normalise(helm)
    assert sorted(k) == sorted(h), "the two deploy different objects"
    problems: list[str] = []
    for key in sorted(k):
        fk, fh = flatten(k[key]), flatten(h[key])
        for path in sorted(set(fk) | set(fh)):
            differs = fk.get(path, "<unset>") != fh.get(path, "<unset>")
            known = (key, path) in KNOWN_DIFFERENCES
            if differs and not known:
                problems.append(
                    f"{key} {path}: kustomize {fk.get(path, '<unset>')!r}"
                    f" != helm {fh.get(path, '<unset>')!r}"
                )
            elif known and not differs:
                problems.append(f"{key} {path}: now equal, drop it from KNOWN_DIFFERENCES")
    assert not problems, "kustomize and Helm disagree:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def kustomize_base() -> Objs:
    return kustomize(KUSTOMIZE)


@pytest.fixture(scope="module")
def helm_base() -> Objs:
    return render(*BASE_VALUES)


def test_base_and_chart_defaults_agree(kustomize_base: Objs, helm_base: Objs) -> None:
    compare(kustomize_base, helm_base)


def test_production_overlay_and_chart_with_ingress_and_hpa_agree() -> None:
    compare(kustomize(KUSTOMIZE / "examples" / "production"), render(*PRODUCTION_VALUES))


def test_a_change_on_one_side_only_is_caught(kustomize_base: Objs, helm_base: Objs) -> None:
    """The comparison itself sees a one-sided change (a guard against a blind normaliser)."""
    changed = copy.deepcopy(helm_base)
    for obj in changed:
        if obj["kind"] == "ConfigMap":
            obj["data"]["PEA_RESUME_GRACE"] = "30"
    with pytest.raises(AssertionError, match="resume_grace"):
        compare(kustomize_base, changed)


def test_both_deploy_the_release_image_tag(kustomize_base: Objs, helm_base: Objs) -> None:
    """A release bumps the kustomize image tag and the chart's appVersion together."""
    for objs in (kustomize_base, helm_base):
        dep = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "pea")
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.rpartition(":")[2] == pea.__version__, image
