"""The error catalogue (pea.errors) and what is generated from it."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from pea.cli import main
from pea.errors import (
    CODES,
    DOCS_BEGIN,
    DOCS_END,
    Codes,
    Error,
    Errors,
    js_module,
    markdown_table,
)

ROOT = Path(__file__).parents[2]


def test_the_docs_error_table_matches_the_catalogue() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    start = doc.index(DOCS_BEGIN) + len(DOCS_BEGIN) + 1
    end = doc.index(DOCS_END)
    assert doc[start:end] == markdown_table() + "\n", (
        "run `pea errors markdown` and paste it into docs/protocol.md between the markers"
    )


def test_the_client_error_module_matches_the_catalogue() -> None:
    committed = (ROOT / "web" / "src" / "errors.gen.js").read_text()
    assert committed == js_module(), "run `pea errors js > web/src/errors.gen.js`"


def test_the_client_imports_the_generated_module() -> None:
    signaling = (ROOT / "web" / "src" / "signaling.js").read_text()
    assert 'from "./errors.gen.js"' in signaling
    assert "room-full" not in signaling  # no copy of the codes of its own


def test_pea_errors_prints_both_forms(capsys: pytest.CaptureFixture[str]) -> None:
    main(["errors", "markdown"])
    assert capsys.readouterr().out == markdown_table() + "\n"
    main(["errors", "js"])
    assert capsys.readouterr().out == js_module()


def _errors() -> list[tuple[str, Error]]:
    return [(n, e) for n, e in vars(Errors).items() if isinstance(e, Error)]


@pytest.mark.parametrize(("name", "entry"), _errors())
def test_every_sentence_is_a_sentence_and_its_template_fills(name: str, entry: Error) -> None:
    fields = {f for _, f, _, _ in string.Formatter().parse(entry.sentence) if f}
    exc = entry.error("join", **dict.fromkeys(fields, "X"))
    assert exc.code in CODES and exc.ref == "join"
    assert exc.message.endswith("."), name
    assert "{" not in exc.message


def test_every_code_has_a_sentence_and_only_final_codes_stop_the_client() -> None:
    used = {e.code for _, e in _errors()}
    assert used == set(CODES)
    assert {c.code for c in Codes.all() if c.final} == {"bad-room", "room-full"}
    assert all(not (c.final and c.retry) for c in Codes.all())
