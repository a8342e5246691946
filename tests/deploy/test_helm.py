"""The Helm chart k8s/helm/pea: lint, render, schema-valid for Kubernetes 1.33, and safe."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
import yaml

from .checks import check_pea_deployment, check_redis_deployment, check_selects, pod_labels
from .helpers import (
    CHART,
    K8S_VERSION,
    container,
    env_of,
    find,
    helm_template,
    kinds,
    render,
    run,
    tool,
    validate,
)

ALL = str(CHART / "ci" / "all-values.yaml")
EXTERNAL = str(CHART / "ci" / "external-redis-values.yaml")
RCLUSTER = str(CHART / "ci" / "redis-cluster-values.yaml")


def config_of(objs: list[dict[str, Any]]) -> dict[str, str]:
    return dict(find(objs, "ConfigMap")["data"])


@pytest.fixture(scope="module")
def defaults() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def everything() -> list[dict[str, Any]]:
    return render("-f", ALL)


@pytest.fixture(scope="module")
def external() -> list[dict[str, Any]]:
    return render("-f", EXTERNAL)


@pytest.fixture(scope="module")
def rcluster() -> list[dict[str, Any]]:
    return render("-f", RCLUSTER)


def test_chart_files() -> None:
    for name in ("Chart.yaml", "values.yaml", "values.schema.json", "templates/NOTES.txt"):
        assert (CHART / name).is_file(), name
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "pea"
    assert not chart.get("dependencies"), "no chart dependencies (no Bitnami)"
    json.loads((CHART / "values.schema.json").read_text())
    # values.yaml is commented section by section.
    values = (CHART / "values.yaml").read_text()
    for section in ("image:", "shutdown:", "config:", "secret:", "redis:", "ingress:"):
        index = values.index("\n" + section)
        assert values[:index].rstrip().splitlines()[-1].startswith("#"), section


@pytest.mark.parametrize(
    "values",
    [[], ["-f", ALL], ["-f", EXTERNAL], ["-f", RCLUSTER]],
    ids=["defaults", "all", "ext", "rcluster"],
)
def test_helm_lint_strict(values: list[str]) -> None:
    out = run([tool("helm"), "lint", "--strict", str(CHART), *values])
    assert "0 chart(s) failed" in out.stdout


def test_defaults_render_valid_objects(defaults: list[dict[str, Any]]) -> None:
    assert kinds(defaults) == sorted(
        ["ConfigMap", "Deployment", "Deployment", "NetworkPolicy", "NetworkPolicy",
         "PodDisruptionBudget", "Secret", "Service", "Service", "Service", "ServiceAccount",
         "Pod"]  # the `helm test` hook
    )  # fmt: skip
    assert validate(defaults) == []


def test_everything_on_renders_valid_objects(everything: list[dict[str, Any]]) -> None:
    for kind in ("Ingress", "HorizontalPodAutoscaler", "ServiceMonitor", "PodDisruptionBudget"):
        find(everything, kind)
    assert kinds(everything).count("NetworkPolicy") == 2
    assert "Secret" not in kinds(everything), "existingSecret: the chart creates no Secret"
    # ServiceMonitor is a Prometheus Operator CRD: no schema in kubernetes-validate,
    # its shape is checked in test_service_monitor.
    assert validate(everything) == ["ServiceMonitor"]


def test_external_redis_renders_valid_objects(external: list[dict[str, Any]]) -> None:
    assert validate(external) == []


def test_validator_rejects_broken_objects(defaults: list[dict[str, Any]]) -> None:
    """The schema check can fail: a misspelt field and a wrong type are caught."""
    import kubernetes_validate

    dep = json.loads(json.dumps(find(defaults, "Deployment", "pea")))
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)
    dep = json.loads(json.dumps(find(defaults, "Deployment", "pea")))
    dep["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)


@pytest.mark.parametrize("fixture", ["defaults", "everything", "external", "rcluster"])
def test_pea_deployment(fixture: str, request: pytest.FixtureRequest) -> None:
    objs = request.getfixturevalue(fixture)
    dep = find(objs, "Deployment", "pea")
    check_pea_deployment(dep, config_of(objs))
    # The config checksum rolls the nodes when settings change.
    assert dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_defaults(defaults: list[dict[str, Any]]) -> None:
    dep = find(defaults, "Deployment", "pea")
    assert dep["spec"]["replicas"] == 3
    pea = container(dep, "pea")
    assert pea["image"] == "pea:0.1.0", "tag defaults to the chart's appVersion"
    config = config_of(defaults)
    assert config["PEA_DRAIN_TIMEOUT"] == "10"
    assert config["PEA_MAX_FRAME_BYTES"] == "65536"
    assert "PEA_PUBLIC_URL" not in config, "no ingress, no public URL"
    # The generated Secret: random values, kept on uninstall, referenced by the pods.
    secret = find(defaults, "Secret")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(values) == {"pea-secret", "redis-password"}
    assert all(len(v) >= 32 and v.isalnum() for v in values.values())
    env = env_of(pea)
    assert env["PEA_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert env["PEA_REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@pea-redis:6379/0"
    # The built-in Redis: official image, password, reachable only by pea nodes.
    redis = find(defaults, "Deployment", "pea-redis")
    check_redis_deployment(redis)
    svc = find(defaults, "Service", "pea-redis")
    check_selects(svc["spec"]["selector"], redis)
    redis_np = find(defaults, "NetworkPolicy", "pea-redis")
    check_selects(redis_np["spec"]["podSelector"]["matchLabels"], redis)
    allowed = redis_np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    check_selects(allowed, dep)
    # Nothing optional is on by default.
    for kind in ("Ingress", "HorizontalPodAutoscaler", "ServiceMonitor"):
        assert kind not in kinds(defaults)


def test_service_and_pdb(defaults: list[dict[str, Any]]) -> None:
    dep = find(defaults, "Deployment", "pea")
    svc = find(defaults, "Service", "pea")
    check_selects(svc["spec"]["selector"], dep)
    assert svc["spec"]["sessionAffinity"] == "None", "no sticky sessions"
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    pdb = find(defaults, "PodDisruptionBudget")
    check_selects(pdb["spec"]["selector"]["matchLabels"], dep)
    assert pdb["spec"]["maxUnavailable"] == 1


def test_network_policy(defaults: list[dict[str, Any]], external: list[dict[str, Any]]) -> None:
    dep = find(defaults, "Deployment", "pea")
    np = find(defaults, "NetworkPolicy", "pea")
    check_selects(np["spec"]["podSelector"]["matchLabels"], dep)
    assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert np["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    egress_ports = {p["port"] for rule in np["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 6379}
    ext = find(external, "NetworkPolicy", "pea")
    redis_rule = ext["spec"]["egress"][1]
    assert redis_rule["ports"] == [{"port": 6380, "protocol": "TCP"}]
    assert redis_rule["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_everything_on(everything: list[dict[str, Any]]) -> None:
    dep = find(everything, "Deployment", "pea")
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    pea = container(dep, "pea")
    assert pea["image"] == "registry.example.com/pea:0.1.0"
    assert env_of(pea)["PEA_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "pea-secrets"
    assert env_of(pea)["PEA_ICE_SERVERS"]["valueFrom"]["secretKeyRef"]["name"] == "pea-turn"
    assert config_of(everything)["PEA_PUBLIC_URL"] == "https://pea.example.com"
    assert pod_labels(dep)["example.com/tier"] == "edge"
    assert dep["spec"]["template"]["spec"]["priorityClassName"] == "high"

    ingress = find(everything, "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(notes["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert notes["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert not any("affinity" in k or "upstream-hash" in k for k in notes), "no sticky sessions"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["pea.example.com"], "secretName": "pea-example-tls"}
    ]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "pea", "port": {"name": "http"}}

    hpa = find(everything, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60

    np = find(everything, "NetworkPolicy", "pea")
    web, scrape = np["spec"]["ingress"]
    assert web["ports"] == [{"port": "http", "protocol": "TCP"}] and len(web["from"]) == 1
    assert scrape["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert scrape["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    config = config_of(everything)
    assert config["PEA_TRUSTED_PROXIES"] == "10.244.0.0/16, fd00:10:244::/56"
    assert config["PEA_MAX_CONNECTIONS_PER_CLIENT"] == "200"
    assert config["PEA_METRICS_PORT"] == "9100"
    # TURN: the URLs in the ConfigMap, the shared secret only from its Secret.
    assert config["PEA_TURN_URLS"].startswith("turn:turn.example.com:3478")
    assert "PEA_TURN_SECRET" not in config
    secret_ref = env_of(pea)["PEA_TURN_SECRET"]["valueFrom"]["secretKeyRef"]
    assert secret_ref == {"name": "pea-turn", "key": "turn-secret"}


@pytest.mark.parametrize("fixture", ["defaults", "everything"])
def test_metrics_have_their_own_port_and_service(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """/metrics is not on the public port: neither the public Service, the ingress nor
    the http network-policy rule lead to it; a ClusterIP Service of its own does."""
    objs = request.getfixturevalue(fixture)
    port = int(config_of(objs)["PEA_METRICS_PORT"])
    assert port != 8080
    pea = container(find(objs, "Deployment", "pea"), "pea")
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in pea["ports"]
    public = find(objs, "Service", "pea")
    assert [p["targetPort"] for p in public["spec"]["ports"]] == ["http"]
    metrics = find(objs, "Service", "pea-metrics")
    assert metrics["spec"]["type"] == "ClusterIP"
    assert metrics["spec"]["ports"] == [
        {"name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP"}
    ]
    check_selects(metrics["spec"]["selector"], find(objs, "Deployment", "pea"))
    for ingress in [o for o in objs if o["kind"] == "Ingress"]:
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] == "pea"


def test_trusted_proxies_are_unset_by_default(defaults: list[dict[str, Any]]) -> None:
    config = config_of(defaults)
    assert "PEA_TRUSTED_PROXIES" not in config, "trust no X-Forwarded-For unless told"
    assert config["PEA_MAX_CONNECTIONS_PER_CLIENT"] == "50"
    np = find(defaults, "NetworkPolicy", "pea")
    assert len(np["spec"]["ingress"]) == 1, "nobody may scrape unless networkPolicy.metricsFrom"


def test_service_monitor(everything: list[dict[str, Any]]) -> None:
    """Shape of the ServiceMonitor CRD object, checked by hand."""
    sm = find(everything, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    svc = find(everything, "Service", "pea-metrics")
    selector = sm["spec"]["selector"]["matchLabels"]
    assert selector.items() <= svc["metadata"]["labels"].items(), "must select pea-metrics"
    public = find(everything, "Service", "pea")
    assert not selector.items() <= public["metadata"]["labels"].items(), "not the public one"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["signal"]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"].endswith("s") and endpoint["scrapeTimeout"].endswith("s")
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}


def test_external_redis(external: list[dict[str, Any]]) -> None:
    assert "pea-redis" not in [o["metadata"]["name"] for o in external]
    pea = container(find(external, "Deployment", "pea"), "pea")
    env = env_of(pea)
    assert (
        env["PEA_REDIS_URL"]["value"]
        == "rediss://pea:$(REDIS_PASSWORD)@redis.example.internal:6380/2"
    )
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-credentials",
        "key": "password",
    }


def test_external_redis_cluster(rcluster: list[dict[str, Any]]) -> None:
    """Seeds, password from a Secret and TLS with a private CA become one URL pea
    parses, and the CA is mounted where the URL says."""
    assert validate(rcluster) == []
    assert "pea-redis" not in [o["metadata"]["name"] for o in rcluster]
    dep = find(rcluster, "Deployment", "pea")
    pea = container(dep, "pea")
    env = env_of(pea)
    url = env["PEA_REDIS_URL"]["value"]
    assert url == (
        "rediss+cluster://pea:$(REDIS_PASSWORD)@redis-cluster-0.redis-cluster.data.svc:6379,"
        "redis-cluster-1.redis-cluster.data.svc:6379,redis-cluster-2.redis-cluster.data.svc:6379"
        "?ssl_ca_certs=/etc/pea/redis-ca/ca.crt&ssl_check_hostname=false"
    )
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-credentials",
        "key": "password",
    }
    mount = next(m for m in pea["volumeMounts"] if m["name"] == "redis-ca")
    assert mount == {"name": "redis-ca", "mountPath": "/etc/pea/redis-ca", "readOnly": True}
    volume = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "redis-ca")
    assert volume["secret"]["secretName"] == "redis-cluster-ca"
    from pea.bus.shards import ClusterURL
    from pea.config import load_settings

    parsed = ClusterURL.parse(url.replace("$(REDIS_PASSWORD)", "hunter2"))
    assert (parsed.tls, parsed.password, parsed.ca_certs, parsed.check_hostname) == (
        True,
        "hunter2",
        "/etc/pea/redis-ca/ca.crt",
        False,
    )
    assert len(parsed.seeds) == 3
    settings = load_settings(environ={"PEA_REDIS_URL": url.replace("$(REDIS_PASSWORD)", "pw")})
    assert settings.redis_url is not None


def test_external_redis_cluster_plain() -> None:
    objs = render("--set", "redis.cluster.seeds={r1:7000,r2:7001}")
    env = env_of(container(find(objs, "Deployment", "pea"), "pea"))
    assert env["PEA_REDIS_URL"]["value"] == "redis+cluster://r1:7000,r2:7001"
    assert "REDIS_PASSWORD" not in env
    assert "pea-redis" not in [o["metadata"]["name"] for o in objs]


def test_external_redis_without_password() -> None:
    objs = render("--set", "redis.url=redis://redis:6379/0", "--set", "networkPolicy.enabled=false")
    pea = container(find(objs, "Deployment", "pea"), "pea")
    assert env_of(pea)["PEA_REDIS_URL"]["value"] == "redis://redis:6379/0"
    assert "REDIS_PASSWORD" not in env_of(pea)
    assert "NetworkPolicy" not in kinds(objs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "shutdown.terminationGracePeriodSeconds=15"], "must be greater than"),
        (["--set", "shutdown.drainTimeoutSeconds=40"], "must be greater than"),
        (["--set", "redis.url=redis://:hunter2@redis:6379/0"], "redis/url"),
        (["--set", "config.maxPeersPerRoom=1"], "maxPeersPerRoom"),
        (["--set", "config.logLevel=loud"], "logLevel"),
        (["--set", "metrics.port=8080"], "metrics/port"),
        (["--set", "config.trustedProxies=nginx"], "trustedProxies"),
        (["--set", "redis.cluster.seeds={redis://r1:7000}"], "seeds"),
        (["--set", "secrets.existingSecret=x"], "secrets"),
        (["--set", "turn.urls=turn:t.example:3478"], "turn.existingSecret"),
        (["--set", "autoscaling.enabled=true", "--set", "autoscaling.minReplicas=9",
          "--set", "autoscaling.maxReplicas=3"], "minReplicas"),
    ],
    ids=["grace", "drain", "inline-password", "peers", "log-level", "metrics-on-http",
         "proxy-name", "cluster-seed-url", "typo", "turn-without-secret", "hpa"],
)  # fmt: skip
def test_bad_values_are_refused(args: list[str], message: str) -> None:
    out = helm_template(*args, check=False)
    assert out.returncode != 0, f"helm template accepted {args}"
    assert message in out.stderr, out.stderr


def test_settings_are_rendered_as_given() -> None:
    objs = render(
        "--set", "config.maxConnections=1000000",
        "--set-json", "config.ratePerSecond=2.5",
        "--set", "config.publicUrl=https://share.example.org/",
        "--set", "shutdown.drainTimeoutSeconds=20",
        "--set", "shutdown.terminationGracePeriodSeconds=40",
    )  # fmt: skip
    config = config_of(objs)
    assert config["PEA_MAX_CONNECTIONS"] == "1000000", "no float formatting of big integers"
    assert config["PEA_RATE_PER_SECOND"] == "2.5"
    assert config["PEA_PUBLIC_URL"] == "https://share.example.org"
    assert config["PEA_DRAIN_TIMEOUT"] == "20"
    # Every rendered value parses with pea's own settings parser.
    from pea.config import load_settings

    env = {k: v for k, v in config.items() if k != "PEA_WEB_DIR"}
    settings = load_settings(environ=env)
    assert settings.max_connections == 1_000_000
    assert settings.drain_timeout == 20
    check_pea_deployment(find(objs, "Deployment", "pea"), config)


def test_default_config_parses_with_pea_settings(defaults: list[dict[str, Any]]) -> None:
    from pea.config import load_settings

    settings = load_settings(environ=config_of(defaults))
    assert (settings.port, settings.host) == (8080, "0.0.0.0")
    assert settings.log_json is True


def test_notes_print_the_url() -> None:
    base = [tool("helm"), "install", "pea", str(CHART), "--dry-run=client", "--namespace", "x"]
    env = {**os.environ, "KUBECONFIG": os.devnull}

    def notes(*args: str) -> str:
        import subprocess

        out = subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=120, env=env, check=False
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.split("NOTES:", 1)[1]

    assert "https://pea.example.com/" in notes("--set", "ingress.enabled=true")
    text = notes()
    assert "port-forward service/pea 8080:80" in text
    assert "http://localhost:8080/" in text
    assert "https://pea.example.org/" in notes("--set", "config.publicUrl=https://pea.example.org")
