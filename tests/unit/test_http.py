from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from pea.app import create_metrics_app
from tests.support.inproc import ROOM, peers_of


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "bus": "connected", "draining": False}


def test_metrics_count_connections_frames_and_errors(client: TestClient) -> None:
    scraper = TestClient(create_metrics_app(client.app.state.node))  # type: ignore[attr-defined]
    with peers_of(client) as connect:
        peer = connect()
        peer.join()
        peer.send({"type": "signal", "to": "nobody-nobody", "data": 1})
        peer.expect_error("unknown-peer")
        text = scraper.get("/metrics").text
    assert "pea_connections 1.0" in text
    assert 'pea_frames_in_total{type="join"} 1.0' in text
    assert 'pea_frames_out_total{type="welcome"} 1.0' in text
    assert 'pea_errors_total{code="unknown-peer"} 1.0' in text
    assert "pea_relay_latency_seconds_bucket" in text
    assert "pea_bus_reconnects" in text
    assert scraper.get("/").status_code == 404  # the metrics app serves nothing else


def test_metrics_are_not_on_the_public_port(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404


def test_the_server_renders_no_qr_codes(client: TestClient) -> None:
    """QR codes are drawn by the page: the secret link never travels to the server."""
    posted = client.post("/api/qr", content="https://pea.example/#secret")
    assert posted.status_code in (404, 405)
    assert "svg" not in posted.headers.get("content-type", "")


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
    assert ROOM not in caplog.text  # type: ignore[attr-defined]
