"""One `Settings` object, fed by command-line flags and `PEA_*` environment variables.

Every setting is declared once in `FIELDS`: the CLI builds its flags from it, the
README's settings table is generated from it, and validation errors name both the
flag and the variable so an operator can find the culprit in either place.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

DEFAULT_ICE_SERVERS: list[dict[str, Any]] = [
    {"urls": ["stun:stun.l.google.com:19302", "stun:stun1.l.google.com:19302"]}
]


N = TypeVar("N", int, float)


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting and says what is wrong."""


@dataclass(frozen=True)
class Field:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    metavar: str = "VALUE"

    @property
    def env(self) -> str:
        return "PEA_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _ranged(convert: Callable[[str], N], what: str, lo: N, hi: N) -> Callable[[str], N]:
    def parse(raw: str) -> N:
        try:
            value = convert(raw.strip())
        except ValueError:
            raise ValueError(f"must be {what}, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _int(lo: int, hi: int) -> Callable[[str], int]:
    return _ranged(int, "a whole number", lo, hi)


def _float(lo: float, hi: float) -> Callable[[str], float]:
    return _ranged(float, "a number", lo, hi)


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _redis_url(raw: str) -> str | None:
    raw = raw.strip()
    if not raw or raw == "memory://":
        return None
    scheme = raw.split("://", 1)[0] if "://" in raw else urlsplit(raw).scheme
    if scheme in {"redis+cluster", "rediss+cluster"}:
        from pea.bus.shards import ClusterURL

        ClusterURL.parse(raw)  # a bad seed list fails at start-up, not at first use
        return raw
    if scheme not in {"redis", "rediss", "unix"}:
        raise ValueError(
            "must be a redis://, rediss://, unix://, redis+cluster:// or rediss+cluster:// URL,"
            f" got scheme {scheme!r}"
        )
    return raw


def _public_url(raw: str) -> str | None:
    raw = raw.strip().rstrip("/")
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(
            f"must be an absolute http(s) URL such as https://pea.example, got {raw!r}"
        )
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    items = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in items:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
            raise ValueError(
                f"each origin must look like https://host[:port] or be *, got {origin!r}"
            )
    return items


def _networks(raw: str) -> tuple[str, ...]:
    items = tuple(n.strip() for n in raw.split(",") if n.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(
                f"each entry must be an IP address or a CIDR such as 10.0.0.0/8, got {item!r}"
            ) from None
    return items


def _ice_servers(raw: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"must be a JSON list of RTCIceServer objects ({exc.msg})") from None
    if not isinstance(value, list) or not all(
        isinstance(s, dict) and isinstance(s.get("urls"), str | list) for s in value
    ):
        raise ValueError('must be a JSON list like [{"urls": ["stun:stun.example:3478"]}]')
    return value


def _turn_urls(raw: str) -> tuple[str, ...]:
    items = tuple(u.strip() for u in raw.split(",") if u.strip())
    for url in items:
        scheme, _, rest = url.partition(":")
        if scheme not in {"turn", "turns"} or not rest or rest.startswith("/"):
            raise ValueError(
                f"each URL must look like turn:host:3478 or turns:host:5349?transport=tcp, "
                f"got {url!r}"
            )
    return items


def _existing_file(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    if not Path(raw).is_file():
        raise ValueError(f"no such file: {raw}")
    return raw


def _log_level(raw: str) -> str:
    level = raw.strip().lower()
    if level not in {"debug", "info", "warning", "error", "critical"}:
        raise ValueError(f"must be one of debug, info, warning, error, critical, got {raw!r}")
    return level


def _secret(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters (use a long random string)")
    return raw


def _dir(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    if not Path(raw, "index.html").is_file():
        raise ValueError(f"must be a folder holding index.html, got {raw!r}")
    return raw


FIELDS: tuple[Field, ...] = (
    Field("host", "0.0.0.0", "Address to listen on.", str.strip, "ADDR"),
    Field("port", 8080, "TCP port to listen on.", _int(1, 65535), "PORT"),
    Field(
        "redis_url",
        None,
        "Redis URL (redis://host:6379/0), or a Redis Cluster's seed nodes "
        "(redis+cluster://[:password@]host:port,host:port; rediss+cluster:// for TLS, "
        "?ssl_ca_certs=/path for a private CA): sharded pub/sub, rooms spread over the "
        "shards. Unset: in-memory bus, a single node.",
        _redis_url,
        "URL",
    ),
    Field(
        "secret",
        None,
        "Signs resume tokens; every node of a cluster needs the same one. "
        "Unset: random per process, so resume does not cross nodes.",
        _secret,
        "SECRET",
    ),
    Field(
        "public_url",
        None,
        "The URL people open (https://pea.example); its origin is always allowed.",
        _public_url,
        "URL",
    ),
    Field("max_peers_per_room", 16, "Peers one room may hold.", _int(2, 1024), "N"),
    Field(
        "max_frame_bytes", 65536, "Largest WebSocket frame accepted.", _int(1024, 16 << 20), "BYTES"
    ),
    Field("rate_per_second", 100.0, "Frames per second per connection.", _float(1, 100000), "N"),
    Field("rate_burst", 200, "Burst of frames above the rate.", _int(1, 1000000), "N"),
    Field(
        "max_connections",
        25000,
        "WebSocket connections one node accepts.",
        _int(1, 10_000_000),
        "N",
    ),
    Field(
        "resume_grace",
        15.0,
        "Seconds a lost peer may resume before it is reported left.",
        _float(0, 3600),
        "SECONDS",
    ),
    Field(
        "allowed_origins",
        (),
        "Comma-separated Origins allowed to open /ws, or *. "
        "Unset: the page's own origin and --public-url.",
        _origins,
        "ORIGINS",
    ),
    Field(
        "ice_servers",
        DEFAULT_ICE_SERVERS,
        "JSON list of RTCIceServer objects sent to clients. Default: public Google STUN, no TURN.",
        _ice_servers,
        "JSON",
    ),
    Field(
        "turn_urls",
        (),
        "Comma-separated TURN URLs (turn:turn.example:3478) handed to clients with "
        "short-lived credentials made from --turn-secret. Unset: no TURN, no relaying.",
        _turn_urls,
        "URLS",
    ),
    Field(
        "turn_secret",
        None,
        "The TURN server's shared secret (coturn: use-auth-secret, static-auth-secret); "
        "it never leaves the node. Required with --turn-urls.",
        _secret,
        "SECRET",
    ),
    Field(
        "turn_ttl",
        86400,
        "Seconds the TURN credentials in each welcome stay valid.",
        _int(60, 7 * 86400),
        "SECONDS",
    ),
    Field(
        "forbid_relay",
        False,
        "Never relay: no TURN server is handed out (not even from --ice-servers) and "
        "clients drop relay candidates.",
        _bool,
        "BOOL",
    ),
    Field(
        "tls_cert",
        None,
        "PEM certificate: serve HTTPS directly (LAN without a proxy).",
        _existing_file,
        "FILE",
    ),
    Field("tls_key", None, "PEM private key for --tls-cert.", _existing_file, "FILE"),
    Field(
        "ping_interval",
        20.0,
        "Seconds between WebSocket pings to each peer.",
        _float(1, 3600),
        "SECONDS",
    ),
    Field(
        "ping_timeout",
        20.0,
        "Seconds to wait for a pong before dropping a peer.",
        _float(1, 3600),
        "SECONDS",
    ),
    Field(
        "send_queue_bytes",
        1 << 20,
        "Bytes queued for a peer that does not read before it is dropped.",
        _int(65536, 1 << 30),
        "BYTES",
    ),
    Field(
        "heartbeat_interval",
        2.0,
        "Seconds between presence heartbeats to the bus.",
        _float(0.1, 60),
        "SECONDS",
    ),
    Field(
        "drain_timeout",
        10.0,
        "Seconds SIGTERM may spend moving peers to other nodes.",
        _float(0, 600),
        "SECONDS",
    ),
    Field("drain_batch", 200, "Peers told to reconnect per drain step.", _int(1, 1000000), "N"),
    Field(
        "max_connections_per_client",
        50,
        "WebSocket connections one client address may hold on a node; 0: no limit. "
        "Raise it when many users share one address (NAT, CGNAT, an office).",
        _int(0, 10_000_000),
        "N",
    ),
    Field(
        "join_timeout",
        10.0,
        "Seconds a new WebSocket may take to join a room before it is closed.",
        _float(0.1, 3600),
        "SECONDS",
    ),
    Field(
        "header_timeout",
        10.0,
        "Seconds a client may take to send a request's headers before it is disconnected.",
        _float(0.1, 3600),
        "SECONDS",
    ),
    Field(
        "max_header_bytes",
        16384,
        "Largest request line plus headers accepted; larger requests get 431.",
        _int(1024, 1 << 20),
        "BYTES",
    ),
    Field(
        "trusted_proxies",
        (),
        "Comma-separated IPs or CIDRs of the reverse proxies whose X-Forwarded-For "
        "names the client. Unset: trust none, the client is the TCP peer.",
        _networks,
        "CIDRS",
    ),
    Field(
        "metrics_port",
        9090,
        "Port of the Prometheus /metrics endpoint (same address as --host); 0: off. "
        "Never the public port.",
        _int(0, 65535),
        "PORT",
    ),
    Field(
        "web_dir",
        None,
        "Folder of the web client to serve. Unset: the bundle shipped in the package.",
        _dir,
        "DIR",
    ),
    Field("log_level", "info", "debug, info, warning or error.", _log_level, "LEVEL"),
    Field("log_json", False, "Log one JSON object per line.", _bool, "BOOL"),
    Field(
        "send_timeout",
        10.0,
        "Seconds a peer may leave frames unread before its connection is reset.",
        _float(1, 3600),
        "SECONDS",
    ),
)

FIELDS_BY_NAME = {f.name: f for f in FIELDS}


def _default(name: str) -> Any:
    """The dataclass default of a setting, taken from FIELDS: defaults are written once."""
    value = FIELDS_BY_NAME[name].default
    if isinstance(value, list | dict):
        return field(default_factory=lambda: copy.deepcopy(value))
    return field(default=value)


@dataclass(frozen=True)
class Settings:
    """Every setting, typed; the defaults (and help, parsing) are those of FIELDS."""

    host: str = _default("host")
    port: int = _default("port")
    redis_url: str | None = _default("redis_url")
    secret: str | None = _default("secret")
    public_url: str | None = _default("public_url")
    max_peers_per_room: int = _default("max_peers_per_room")
    max_frame_bytes: int = _default("max_frame_bytes")
    rate_per_second: float = _default("rate_per_second")
    rate_burst: int = _default("rate_burst")
    max_connections: int = _default("max_connections")
    resume_grace: float = _default("resume_grace")
    allowed_origins: tuple[str, ...] = _default("allowed_origins")
    ice_servers: list[dict[str, Any]] = _default("ice_servers")  # noqa: RUF009 (a fresh copy each)
    turn_urls: tuple[str, ...] = _default("turn_urls")
    turn_secret: str | None = _default("turn_secret")
    turn_ttl: int = _default("turn_ttl")
    forbid_relay: bool = _default("forbid_relay")
    tls_cert: str | None = _default("tls_cert")
    tls_key: str | None = _default("tls_key")
    ping_interval: float = _default("ping_interval")
    ping_timeout: float = _default("ping_timeout")
    send_queue_bytes: int = _default("send_queue_bytes")
    heartbeat_interval: float = _default("heartbeat_interval")
    drain_timeout: float = _default("drain_timeout")
    drain_batch: int = _default("drain_batch")
    max_connections_per_client: int = _default("max_connections_per_client")
    join_timeout: float = _default("join_timeout")
    header_timeout: float = _default("header_timeout")
    max_header_bytes: int = _default("max_header_bytes")
    trusted_proxies: tuple[str, ...] = _default("trusted_proxies")
    metrics_port: int = _default("metrics_port")
    web_dir: str | None = _default("web_dir")
    log_level: str = _default("log_level")
    log_json: bool = _default("log_json")
    send_timeout: float = _default("send_timeout")

    def __post_init__(self) -> None:
        if self.metrics_port and self.metrics_port == self.port:
            raise ConfigError(
                "--metrics-port / PEA_METRICS_PORT must differ from --port / PEA_PORT: "
                "metrics are not served on the public port"
            )
        if bool(self.turn_urls) != (self.turn_secret is not None):
            raise ConfigError(
                "--turn-urls / PEA_TURN_URLS and --turn-secret / PEA_TURN_SECRET go together: "
                "set both"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError(
                "--tls-cert / PEA_TLS_CERT and --tls-key / PEA_TLS_KEY go together: set both"
            )

    @property
    def secret_is_random(self) -> bool:
        return self.secret is None

    @property
    def presence_lease(self) -> float:
        """How long a live peer's presence survives without a heartbeat (a node died)."""
        return self.heartbeat_interval * 3

    def effective_secret(self) -> bytes:
        return (self.secret or _PROCESS_SECRET).encode()


_PROCESS_SECRET = secrets.token_urlsafe(32)

if {f.name for f in fields(Settings)} != set(FIELDS_BY_NAME):
    raise ImportError("pea.config: FIELDS and Settings name different settings")


def load_settings(
    overrides: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from raw strings: flags (overrides) win over the environment.

    Raises ConfigError naming the flag and the variable of the first bad value.
    """
    env = os.environ if environ is None else environ
    raw_overrides = overrides or {}
    values: dict[str, Any] = {}
    for f in FIELDS:
        raw = raw_overrides.get(f.name)
        source = f.flag
        if raw is None:
            raw = env.get(f.env)
            source = f.env
        if raw is None:
            continue
        try:
            values[f.name] = f.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{f.flag} / {f.env}: {exc} (from {source})") from None
    return Settings(**values)
