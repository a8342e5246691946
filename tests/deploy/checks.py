"""Assertions shared by the Helm and kustomize tests: what every pea Deployment must be."""

from __future__ import annotations

from typing import Any

from pea.config import FIELDS

from .helpers import container, env_of

KNOWN_ENV = {f.env for f in FIELDS}


def check_settings_names(names: set[str]) -> None:
    unknown = {n for n in names if n.startswith("PEA_")} - KNOWN_ENV
    assert not unknown, f"not pea settings (typo?): {sorted(unknown)}"


def check_pea_deployment(dep: dict[str, Any], config: dict[str, str]) -> None:
    """A pea Deployment is zero-downtime, hardened and keeps its secrets in Secrets."""
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pea = container(dep, "pea")

    # Rolling updates never go below the wanted number of ready nodes.
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] >= 1

    # Probes: ready means /readyz (503 while draining), alive means /healthz.
    ports = {p["name"]: p["containerPort"] for p in pea["ports"]}
    # /metrics on its own port, never the public one.
    assert ports == {"http": 8080, "metrics": int(config["PEA_METRICS_PORT"])}
    assert ports["metrics"] != 8080
    assert pea["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pea["readinessProbe"]["httpGet"]["port"] in ("http", 8080)
    assert pea["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pea["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert pea["command"] == ["pea", "serve"]

    # Shutdown: preStop pause, then the drain, all inside the grace period.
    pre_stop = pea["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep", pre_stop
    pre_stop_seconds = float(pre_stop[1])
    assert pre_stop_seconds >= 1
    drain = float(config["PEA_DRAIN_TIMEOUT"])
    assert drain > 0
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > pre_stop_seconds + drain, (grace, pre_stop_seconds, drain)

    # Hardening: non-root, read-only root filesystem with a writable /tmp.
    psc, csc = pod["securityContext"], pea["securityContext"]
    assert psc["runAsNonRoot"] is True and csc["runAsNonRoot"] is True
    assert psc["runAsUser"] != 0
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"]["drop"] == ["ALL"]
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m["name"] for m in pea["volumeMounts"]}
    assert "/tmp" in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]

    # Resources and spreading.
    assert pea["resources"]["requests"]["cpu"] and pea["resources"]["requests"]["memory"]
    assert pea["resources"]["limits"]["memory"]
    keys = {t["topologyKey"] for t in pod["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in keys
    for t in pod["topologySpreadConstraints"]:
        selector = t["labelSelector"]["matchLabels"]
        assert selector.items() <= pod_labels(dep).items()

    # Secrets only by reference; the Redis URL interpolates the password.
    env = env_of(pea)
    assert "value" not in env["PEA_SECRET"]
    assert env["PEA_SECRET"]["valueFrom"]["secretKeyRef"]["name"]
    for name, e in env.items():
        if any(w in name for w in ("SECRET", "PASSWORD", "TOKEN")):
            assert "value" not in e, f"{name} is inline"
    url = env["PEA_REDIS_URL"].get("value", "")
    assert url.startswith(("redis://", "rediss://", "redis+cluster://", "rediss+cluster://")), url
    if "@" in url:
        assert "$(REDIS_PASSWORD)@" in url, f"credentials inline in PEA_REDIS_URL: {url}"
        names = [e["name"] for e in pea["env"]]
        assert names.index("REDIS_PASSWORD") < names.index("PEA_REDIS_URL"), (
            "REDIS_PASSWORD must come before PEA_REDIS_URL for $(VAR) expansion"
        )
        assert "secretKeyRef" in env["REDIS_PASSWORD"]["valueFrom"]
    check_settings_names(set(env) | set(config))


def check_redis_deployment(dep: dict[str, Any]) -> None:
    pod = dep["spec"]["template"]["spec"]
    redis = container(dep, "redis")
    assert redis["image"].startswith("redis:"), "the official Redis image"
    assert "--requirepass" in redis["args"]
    assert redis["args"][redis["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert "secretKeyRef" in env_of(redis)["REDIS_PASSWORD"]["valueFrom"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert redis["securityContext"]["readOnlyRootFilesystem"] is True
    assert any(m["mountPath"] == "/data" for m in redis["volumeMounts"])


def pod_labels(dep: dict[str, Any]) -> dict[str, str]:
    return dict(dep["spec"]["template"]["metadata"]["labels"])


def check_selects(selector: dict[str, str], dep: dict[str, Any]) -> None:
    assert selector, "empty selector"
    assert selector.items() <= pod_labels(dep).items(), (selector, pod_labels(dep))
