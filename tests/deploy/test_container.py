"""deploy/Dockerfile, deploy/compose.yaml and the nginx config they share with make cluster,
read as files. tests/image builds and runs them for real."""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import ROOT, nginx_exe

DEPLOY = ROOT / "deploy"


def instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    """What the real build (tests/image) cannot show by passing: the shape of the file."""
    text = (DEPLOY / "Dockerfile").read_text()
    # A `# syntax=` line makes BuildKit fetch a frontend image: builds must work offline.
    assert not re.search(r"^#\s*syntax\s*=", text, flags=re.M | re.I)
    ins = instructions()
    froms = [rest for op, rest in ins if op == "FROM"]
    assert len(froms) >= 2
    assert froms[0].startswith("node:") and froms[0].endswith(" AS web")
    assert froms[-1].startswith("python:") and "slim" in froms[-1]
    final = ins[max(i for i, (op, _) in enumerate(ins) if op == "FROM") :]
    ops = dict(final)
    # Runs as a numeric non-root user, so runAsNonRoot can check it.
    user = ops["USER"].split(":")[0]
    assert user.isdigit() and int(user) >= 1000
    assert "PYTHONDONTWRITEBYTECODE=1" in ops["ENV"], "no .pyc writes on a read-only root"
    # The image's version label defaults to the package's version.
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"ARG PEA_VERSION={version}" in text


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def test_compose_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    peas = sorted(name for name in services if name.startswith("pea"))
    assert peas == ["pea1", "pea2", "pea3"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["nginx"]["image"].startswith("nginx:")
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    upstreams = re.findall(r"^\s*server (pea\d+):8080", conf, flags=re.M)
    assert sorted(upstreams) == peas, "nginx balances over exactly the compose nodes"
    (subnet,) = [c["subnet"] for c in compose["networks"]["default"]["ipam"]["config"]]
    for name in peas:
        pea = services[name]
        assert pea["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        env = pea["environment"]
        # Secrets come from deploy/.env (gitignored), never from this file.
        assert env["PEA_SECRET"].startswith("${PEA_SECRET:?")
        assert "${REDIS_PASSWORD:?" in env["PEA_REDIS_URL"]
        assert pea["read_only"] is True and "/tmp" in pea["tmpfs"]
        assert pea["user"].split(":")[0] != "0"
        grace = int(pea["stop_grace_period"].rstrip("s"))
        assert grace > float(env["PEA_DRAIN_TIMEOUT"])
        assert pea["depends_on"]["redis"]["condition"] == "service_healthy"
        # nginx is the only client of the nodes; its X-Forwarded-For is believed.
        assert env["PEA_TRUSTED_PROXIES"] == subnet
        assert env["PEA_METRICS_PORT"] == "9090"
        assert "ports" not in pea, "nodes publish nothing, /metrics included"
    assert services["nginx"]["ports"] == ["${PEA_HTTP_PORT:-8080}:8080"]
    assert "--requirepass" in services["redis"]["command"]
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_compose_redis_cluster_override(compose: dict[str, Any]) -> None:
    """The override points every node at an external Redis Cluster: seeds, password
    and TLS from deploy/.env, giving a URL pea's own settings accept."""
    from pea.bus.shards import ClusterURL
    from pea.config import load_settings

    override = yaml.safe_load((DEPLOY / "compose.redis-cluster.yaml").read_text())
    peas = sorted(name for name in compose["services"] if name.startswith("pea"))
    assert sorted(override["services"]) == peas
    values = {
        "REDIS_CLUSTER_SCHEME": "rediss+cluster",
        "REDIS_CLUSTER_PASSWORD": "hunter2",
        "REDIS_CLUSTER_SEEDS": "10.0.0.11:6379,10.0.0.12:6379",
        "REDIS_CLUSTER_QUERY": "?ssl_ca_certs=/etc/pea/redis-ca.crt",
    }

    def interpolate(text: str) -> str:  # ${VAR:-default} and ${VAR:?error}, as compose does
        return re.sub(r"\$\{(\w+)(?::[-?]([^}]*))?\}", lambda m: values.get(m[1], m[2] or ""), text)

    for name in peas:
        service = override["services"][name]
        url = service["environment"]["PEA_REDIS_URL"]
        assert "${REDIS_CLUSTER_PASSWORD:?" in url, "the password comes from .env"
        parsed = ClusterURL.parse(interpolate(url))
        assert parsed.tls and parsed.password == "hunter2" and len(parsed.seeds) == 2
        assert parsed.ca_certs == "/etc/pea/redis-ca.crt"
        assert load_settings(environ={"PEA_REDIS_URL": interpolate(url)}).redis_url
        (mount,) = service["volumes"]
        assert interpolate(mount) == "/dev/null:/etc/pea/redis-ca.crt:ro"


def test_nginx_config_balances_websockets_without_stickiness() -> None:
    conf = re.sub(r"#.*", "", (DEPLOY / "nginx" / "nginx.conf").read_text())
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    assert "proxy_http_version 1.1;" in conf
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        seconds = int(re.search(rf"{directive} (\d+)s;", conf).group(1))  # type: ignore[union-attr]
        assert seconds >= 3600, directive
    for sticky in ("ip_hash", "hash ", "sticky"):
        assert sticky not in conf, "no sticky sessions: any node serves any peer"
    assert re.search(r"proxy_next_upstream [^;]*http_503", conf)


def test_nginx_config_is_accepted_by_nginx() -> None:
    """`nginx -t` on the compose config, with the node names pointed at loopback."""
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        conf = re.sub(r"pea\d+:8080", "127.0.0.1:9", conf).replace("/tmp/", tmp + "/")
        path = Path(tmp, "nginx.conf")
        path.write_text(conf)
        argv = [nginx_exe(), "-t", "-p", tmp, "-e", f"{tmp}/error.log", "-c", str(path)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert out.returncode == 0, f"{shlex.join(argv)}\n{out.stderr}"


def test_docs_list_every_setting() -> None:
    """docs/deploy.md's settings table has every PEA_* setting of pea.config, and no other."""
    from pea.config import FIELDS

    text = (ROOT / "docs" / "deploy.md").read_text()
    rows = set(re.findall(r"^\| `(PEA_[A-Z_]+)` \| `(--[a-z-]+)` \|", text, flags=re.M))
    expected = {(f.env, f.flag) for f in FIELDS}
    assert rows - expected == set(), "settings in docs/deploy.md that pea does not have"
    assert expected - rows == set(), "settings missing from docs/deploy.md's table"
