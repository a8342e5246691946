"""The share target (the web app manifest's `share_target`) is answered by the page's
service worker, in the browser. A POST that reaches the server instead (no worker running
yet) must not be read: the server sends the browser back to the page, which says what
happened, and the files stay where they were."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.testclient import TestClient

from pea.app import create_app
from pea.config import Settings


def test_a_share_that_reaches_the_server_is_sent_back_unread(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    r = client.post(
        "/share-target",
        files={"files": ("secret.txt", b"not for the server")},
        data={"text": "hello"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/?share-target=refused"
    assert r.headers["connection"] == "close"


def test_the_server_never_reads_a_shared_files_bytes() -> None:
    """At the ASGI level: the app answers the POST without a single `receive()` for its
    body, so not even the first chunk of a file is taken from the connection."""
    app = create_app(Settings(web_dir=None))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/share-target",
        "raw_path": b"/share-target",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"content-length", b"100000"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8080),
    }
    reads = 0
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"--x\r\nsecret bytes", "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 303
    assert reads == 0, "the server read the body of a share-target POST"
