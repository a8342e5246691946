import subprocess
import sys

import pytest

from pea.config import FIELDS, ConfigError, load_settings


def test_defaults_run_one_node_on_the_memory_bus() -> None:
    s = load_settings({}, environ={})
    assert s.port == 8080
    assert s.redis_url is None
    assert s.max_peers_per_room == 16
    assert s.max_frame_bytes == 65536
    assert s.rate_per_second == 100 and s.rate_burst == 200
    assert s.resume_grace == 15
    assert s.ice_servers[0]["urls"][0].startswith("stun:")
    assert not any("turn:" in str(server) for server in s.ice_servers)
    assert s.secret_is_random


def test_environment_and_flags_with_flags_winning() -> None:
    env = {"PEA_PORT": "9000", "PEA_REDIS_URL": "redis://r:6379/1", "PEA_LOG_JSON": "true"}
    s = load_settings({"port": "9100"}, environ=env)
    assert s.port == 9100
    assert s.redis_url == "redis://r:6379/1"
    assert s.log_json is True
    origins = load_settings({"allowed_origins": "https://a.example, https://b.example:8443"}, {})
    assert origins.allowed_origins == ("https://a.example", "https://b.example:8443")


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("port", "http", "--port / PEA_PORT"),
        ("port", "70000", "--port / PEA_PORT"),
        ("redis_url", "http://x", "--redis-url / PEA_REDIS_URL"),
        ("ice_servers", "[{bad", "--ice-servers / PEA_ICE_SERVERS"),
        ("ice_servers", '{"urls": "stun:x"}', "--ice-servers / PEA_ICE_SERVERS"),
        ("allowed_origins", "pea.example", "--allowed-origins / PEA_ALLOWED_ORIGINS"),
        ("secret", "short", "--secret / PEA_SECRET"),
        ("tls_cert", "/no/such/file.pem", "--tls-cert / PEA_TLS_CERT"),
        ("max_peers_per_room", "1", "--max-peers-per-room / PEA_MAX_PEERS_PER_ROOM"),
        ("log_level", "loud", "--log-level / PEA_LOG_LEVEL"),
        ("log_json", "maybe", "--log-json / PEA_LOG_JSON"),
        ("public_url", "pea.example", "--public-url / PEA_PUBLIC_URL"),
        ("trusted_proxies", "nginx", "--trusted-proxies / PEA_TRUSTED_PROXIES"),
        ("trusted_proxies", "10.0.0.0/33", "--trusted-proxies / PEA_TRUSTED_PROXIES"),
        ("metrics_port", "-1", "--metrics-port / PEA_METRICS_PORT"),
        ("join_timeout", "0", "--join-timeout / PEA_JOIN_TIMEOUT"),
        ("header_timeout", "never", "--header-timeout / PEA_HEADER_TIMEOUT"),
        ("max_header_bytes", "100", "--max-header-bytes / PEA_MAX_HEADER_BYTES"),
        (
            "max_connections_per_client",
            "-5",
            "--max-connections-per-client / PEA_MAX_CONNECTIONS_PER_CLIENT",
        ),
    ],
)
def test_a_bad_setting_names_itself(name: str, value: str, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value}, environ={})
    assert named in str(info.value)


def test_trusted_proxies_take_addresses_and_networks() -> None:
    settings = load_settings({"trusted_proxies": " 10.0.0.1, 10.244.0.0/16,fd00::/8 "}, {})
    assert settings.trusted_proxies == ("10.0.0.1", "10.244.0.0/16", "fd00::/8")
    assert load_settings({}, {}).trusted_proxies == (), "trust nobody unless told"


def test_metrics_never_share_the_public_port() -> None:
    with pytest.raises(ConfigError, match="--metrics-port / PEA_METRICS_PORT"):
        load_settings({"port": "9000", "metrics_port": "9000"}, {})
    assert load_settings({"port": "9000", "metrics_port": "0"}, {}).metrics_port == 0


def test_tls_needs_both_files(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="--tls-key"):
        load_settings({"tls_cert": __file__}, environ={})


def test_every_setting_has_a_flag_and_a_variable() -> None:
    for field in FIELDS:
        assert field.env == "PEA_" + field.name.upper()
        assert field.flag == "--" + field.name.replace("_", "-")
        assert field.help


def test_pea_serve_stops_with_one_clear_line_on_a_bad_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pea", "serve", "--max-frame-bytes", "lots"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--max-frame-bytes / PEA_MAX_FRAME_BYTES" in lines[0]


def test_the_readme_settings_table_matches_the_code() -> None:
    from pathlib import Path

    from pea.cli import settings_table

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index("<!-- settings:start -->\n") + len("<!-- settings:start -->\n")
    end = readme.index("\n<!-- settings:end -->")
    assert readme[start:end] == settings_table(), "run `pea settings` and paste it into README"


def test_version_is_the_installed_distributions() -> None:
    """`pea --version` names pyproject.toml's version (a container image is checked by it)."""
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text())["project"]["version"]
    out = subprocess.run(
        [sys.executable, "-m", "pea", "--version"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and out.stdout.strip() == f"pea {version}", out
