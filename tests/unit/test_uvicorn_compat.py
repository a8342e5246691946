"""pea relies on a few private parts of uvicorn and Starlette; a version that
changes them is refused at start-up, by name, instead of misbehaving later."""

from __future__ import annotations

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pea import uvicorn_compat
from pea.cli import main


def test_the_installed_uvicorn_has_what_pea_uses() -> None:
    assert uvicorn_compat.problems() == []
    uvicorn_compat.check()


def test_a_uvicorn_without_a_callback_pea_overrides_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(HttpToolsProtocol, "on_header")
    with pytest.raises(uvicorn_compat.IncompatibleUvicorn, match=r"HttpToolsProtocol\.on_header"):
        uvicorn_compat.check()


def test_pea_serve_refuses_to_start_on_an_incompatible_uvicorn(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = uvicorn.Server.__init__

    def without_captured_signals(self: uvicorn.Server, config: uvicorn.Config) -> None:
        original(self, config)
        del self._captured_signals

    monkeypatch.setattr(uvicorn.Server, "__init__", without_captured_signals)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", "18081", "--metrics-port", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "_captured_signals" in err and "pyproject.toml" in err
