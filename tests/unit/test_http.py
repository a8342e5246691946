from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from tests.unit.conftest import ROOM, peers_of


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "bus": "connected", "draining": False}


def test_metrics_count_connections_frames_and_errors(client: TestClient) -> None:
    with peers_of(client) as connect:
        peer = connect()
        peer.join()
        peer.send({"type": "signal", "to": "nobody-nobody", "data": 1})
        peer.expect_error("unknown-peer")
        text = client.get("/metrics").text
    assert "pea_connections 1.0" in text
    assert 'pea_frames_in_total{type="join"} 1.0' in text
    assert 'pea_frames_out_total{type="welcome"} 1.0' in text
    assert 'pea_errors_total{code="unknown-peer"} 1.0' in text
    assert "pea_relay_latency_seconds_bucket" in text
    assert "pea_bus_reconnects" in text


def test_qr_renders_the_posted_link_as_svg(client: TestClient) -> None:
    link = "https://pea.example/#" + "k" * 43
    svg = client.post("/api/qr", content=link, headers={"content-type": "text/plain"})
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<?xml") and "<svg" in svg.text
    assert svg.headers["cache-control"] == "no-store"
    as_json = client.post("/api/qr", json={"link": link})
    assert as_json.status_code == 200 and as_json.content == svg.content
    other = client.post("/api/qr", content="https://pea.example/#other")
    assert other.content != svg.content


def test_qr_refuses_what_it_should_not_render(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_qr_bytes=100)
    assert client.post("/api/qr", content="").status_code == 400
    assert client.post("/api/qr", content="javascript:alert(1)").status_code == 400
    assert client.post("/api/qr", json={"nolink": 1}).status_code == 400
    too_long = client.post("/api/qr", content="https://x.example/#" + "a" * 200)
    assert too_long.status_code == 413 and "100 bytes" in too_long.json()["error"]
    assert client.get("/api/qr").status_code in (404, 405)  # never rendered from a URL


def test_web_client_is_served_with_a_strict_policy(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>pea test page</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    client = make_client(web_dir=str(tmp_path))
    page = client.get("/")
    assert page.status_code == 200 and "pea test page" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/missing.js").status_code == 404


def test_without_a_bundle_the_root_page_says_how_to_build_it(
    make_client: Callable[..., TestClient], monkeypatch: object
) -> None:
    import pea.http

    monkeypatch.setattr(pea.http, "PACKAGED_WEB_DIR", Path("/nonexistent"))  # type: ignore[attr-defined]
    page = make_client().get("/")
    assert page.status_code == 200 and "make web" in page.text


def test_room_in_join_is_not_leaked_to_http_logs(client: TestClient, caplog: object) -> None:
    with peers_of(client) as connect:
        connect().join()
    client.post("/api/qr", content="https://pea.example/#secret-fragment")
    assert "secret-fragment" not in caplog.text  # type: ignore[attr-defined]
    assert ROOM not in caplog.text  # type: ignore[attr-defined]
