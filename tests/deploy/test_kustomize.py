"""The plain manifests: `kubectl kustomize k8s/` renders valid, safe objects."""

from __future__ import annotations

from typing import Any

import pytest

from .checks import check_pea_deployment, check_redis_deployment, check_selects
from .helpers import KUSTOMIZE, container, find, kinds, kustomize, validate


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kustomize(KUSTOMIZE)


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return kustomize(KUSTOMIZE / "examples" / "production")


def config_of(objs: list[dict[str, Any]]) -> dict[str, str]:
    return dict(find(objs, "ConfigMap")["data"])


def test_base_renders_valid_objects(base: list[dict[str, Any]]) -> None:
    assert kinds(base) == sorted(
        ["ConfigMap", "Deployment", "Deployment", "NetworkPolicy", "NetworkPolicy",
         "PodDisruptionBudget", "Service", "Service", "Service", "ServiceAccount"]
    )  # fmt: skip
    assert validate(base) == []


def test_production_overlay_renders_valid_objects(production: list[dict[str, Any]]) -> None:
    assert "Ingress" in kinds(production) and "HorizontalPodAutoscaler" in kinds(production)
    assert validate(production) == []
    assert {o["metadata"].get("namespace") for o in production} == {"pea"}


@pytest.mark.parametrize("fixture", ["base", "production"])
def test_pea_deployment(fixture: str, request: pytest.FixtureRequest) -> None:
    objs = request.getfixturevalue(fixture)
    dep = find(objs, "Deployment", "pea")
    config = config_of(objs)
    check_pea_deployment(dep, config)
    # The generated ConfigMap (hashed name) is the one the pods read.
    pea = container(dep, "pea")
    assert pea["envFrom"] == [
        {"configMapRef": {"name": find(objs, "ConfigMap")["metadata"]["name"]}}
    ]
    check_redis_deployment(find(objs, "Deployment", "pea-redis"))
    # Secrets come from a Secret the operator creates (docs/deploy.md), never from here.
    assert "Secret" not in kinds(objs)


def test_selectors_match(base: list[dict[str, Any]]) -> None:
    dep = find(base, "Deployment", "pea")
    redis = find(base, "Deployment", "pea-redis")
    check_selects(find(base, "Service", "pea")["spec"]["selector"], dep)
    check_selects(find(base, "Service", "pea-redis")["spec"]["selector"], redis)
    check_selects(find(base, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], dep)
    check_selects(find(base, "NetworkPolicy", "pea")["spec"]["podSelector"]["matchLabels"], dep)
    redis_np = find(base, "NetworkPolicy", "pea-redis")
    check_selects(redis_np["spec"]["podSelector"]["matchLabels"], redis)
    check_selects(redis_np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"], dep)
    # Service selectors must not pick the other component's pods.
    assert not find(base, "Service", "pea")["spec"]["selector"].items() <= (
        redis["spec"]["template"]["metadata"]["labels"].items()
    )
    assert find(base, "Service", "pea")["spec"]["sessionAffinity"] == "None"


def test_metrics_are_on_their_own_port_and_service(base: list[dict[str, Any]]) -> None:
    dep = find(base, "Deployment", "pea")
    port = int(config_of(base)["PEA_METRICS_PORT"])
    metrics = find(base, "Service", "pea-metrics")
    check_selects(metrics["spec"]["selector"], dep)
    assert metrics["spec"]["type"] == "ClusterIP"
    assert metrics["spec"]["ports"][0]["targetPort"] == "metrics"
    assert {p["name"]: p["containerPort"] for p in container(dep, "pea")["ports"]} == {
        "http": 8080,
        "metrics": port,
    }
    public = find(base, "Service", "pea")
    assert [p["targetPort"] for p in public["spec"]["ports"]] == ["http"]
    np = find(base, "NetworkPolicy", "pea")
    opened = {p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]}
    assert opened == {"http"}, "the metrics port is closed until an overlay opens it"


def test_production_overlay(production: list[dict[str, Any]]) -> None:
    dep = find(production, "Deployment", "pea")
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    assert container(dep, "pea")["image"] == "registry.example.com/pea:0.1.0"
    assert config_of(production)["PEA_PUBLIC_URL"] == "https://pea.example.com"
    assert config_of(production)["PEA_TRUSTED_PROXIES"] == "10.244.0.0/16"
    backend = find(production, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"] == {"name": "pea", "port": {"name": "http"}}, "never metrics"
    ingress = find(production, "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert ingress["spec"]["tls"][0]["hosts"] == ["pea.example.com"]
    assert ingress["spec"]["rules"][0]["host"] == "pea.example.com"
    hpa = find(production, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "pea"


def test_redis_cluster_component() -> None:
    """The component swaps the built-in Redis for an external Redis Cluster: the URL
    pea parses (password by reference), no built-in Redis, egress opened to it."""
    from pea.bus.shards import ClusterURL
    from pea.config import load_settings

    objs = kustomize(KUSTOMIZE / "examples" / "redis-cluster")
    assert validate(objs) == []
    assert not [o for o in objs if o["metadata"]["name"] == "pea-redis"]
    dep = find(objs, "Deployment", "pea")
    pea = container(dep, "pea")
    env = {e["name"]: e for e in pea["env"]}
    url = env["PEA_REDIS_URL"]["value"]
    assert url.startswith("redis+cluster://:$(REDIS_PASSWORD)@")
    names = [e["name"] for e in pea["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("PEA_REDIS_URL")
    assert len(ClusterURL.parse(url.replace("$(REDIS_PASSWORD)", "pw")).seeds) == 3
    assert load_settings(environ={"PEA_REDIS_URL": url}).redis_url
    egress = find(objs, "NetworkPolicy", "pea")["spec"]["egress"][1]
    assert egress["to"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    assert egress["ports"] == [{"port": 6379, "protocol": "TCP"}]
    check_pea_deployment(dep, config_of(objs))
