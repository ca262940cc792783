"""Schemas match their models; samples validate against both; ids are deterministic."""

from __future__ import annotations

import json

import jsonschema
import pytest

from events import CATALOG, Event, T, from_dict
from events.catalog import Echo
from events.schema import SAMPLES, render, schema_path

TYPES = sorted(CATALOG)


@pytest.mark.parametrize("type_", TYPES)
def test_checked_in_schema_matches_the_model(type_):
    path = schema_path(type_)
    assert path.exists(), f"missing {path}: run python -m events.schema"
    assert path.read_text() == render(type_), f"{path} drifted from its model: run python -m events.schema"


@pytest.mark.parametrize("type_", TYPES)
def test_sample_validates_against_model_and_schema(type_):
    sample = json.loads((SAMPLES / f"{type_}.json").read_text())
    event = from_dict(sample)
    assert event.type == type_
    jsonschema.validate(sample, json.loads(schema_path(type_).read_text()))
    # and what we write validates too
    jsonschema.validate(event.to_wire(), json.loads(schema_path(type_).read_text()))


def test_every_issue_type_is_in_the_catalog():
    needed = {
        "version.released",
        "window.opened",
        "window.closing",
        "upgrade.planned",
        "upgrade.requested",
        "stage.requested",
        "stage.started",
        "job.poll",
        "stage.succeeded",
        "stage.failed",
        "upgrade.succeeded",
        "upgrade.failed",
        "upgrade.halted",
        "chat.command",
        "notification.requested",
    }
    assert {f"dev.upshift.{n}" for n in needed} <= set(CATALOG)


def test_consequence_ids_are_deterministic_and_distinct():
    cause = Event(type=T.ECHO, id="cause-1", data=Echo(message="x"), runid="r1")
    a1 = cause.follow(T.ECHO, Echo(message="y", reply=False), id_parts=(1,))
    a2 = cause.follow(T.ECHO, Echo(message="y", reply=False), id_parts=(1,))
    b = cause.follow(T.ECHO, Echo(message="y", reply=False), id_parts=(2,))
    assert a1.id == a2.id != b.id
    assert a1.runid == "r1", "correlation is inherited"


def test_extension_values_are_checked():
    with pytest.raises(ValueError):
        Event(type=T.ECHO, data=Echo(message="x"), runid="has space")
