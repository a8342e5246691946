"""Settings takes its defaults from the FIELDS table: written once."""

from __future__ import annotations

from dataclasses import fields

from pea.config import FIELDS, Settings


def test_every_setting_defaults_to_its_fields_entry() -> None:
    settings = Settings()
    assert [f.name for f in fields(Settings)] == [f.name for f in FIELDS]
    for entry in FIELDS:
        assert getattr(settings, entry.name) == entry.default, entry.name


def test_a_mutable_default_is_not_shared_between_settings() -> None:
    first = Settings()
    first.ice_servers.append({"urls": "turn:mutated"})
    assert Settings().ice_servers == next(f.default for f in FIELDS if f.name == "ice_servers")
