"""JSON Schemas and samples of the catalog, checked in under ``events/schemas`` and ``events/samples``.

``python -m events.schema`` regenerates the schemas; a test fails when a checked-in schema
drifts from its model or a sample stops validating.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from events.catalog import CATALOG

__all__ = ["SAMPLES", "SCHEMAS", "render", "schema_for", "schema_path", "write_schemas"]

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE / "schemas"
SAMPLES = HERE / "samples"


def schema_for(type_: str) -> dict[str, Any]:
    """The JSON Schema of the whole CloudEvent (envelope + typed data) of ``type_``."""
    spec = CATALOG[type_]
    data = spec.model.model_json_schema()
    defs = data.pop("$defs", {})
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://upshift.dev/schemas/{type_}.json",
        "title": type_,
        "description": spec.description,
        "type": "object",
        "required": ["specversion", "type", "source", "id", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "type": {"const": type_},
            "source": {"type": "string", "minLength": 1, "maxLength": 2048},
            "id": {"type": "string", "minLength": 1, "maxLength": 128},
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string", "maxLength": 2048},
            "datacontenttype": {"const": "application/json"},
            "runid": {"type": "string"},
            "target": {"type": "string"},
            "stage": {"type": "string"},
            "kind": {"type": "string"},
            "data": data,
        },
        "additionalProperties": False,
    }
    # CloudEvents extension attributes (events.envelope): any other lower-case alphanumeric name
    others = "|".join(sorted(schema["properties"]))
    schema["patternProperties"] = {
        f"^(?!(?:{others})$)[a-z0-9]{{1,20}}$": {"type": ["string", "integer", "boolean"]}
    }
    if defs:
        schema["$defs"] = defs
    return schema


def schema_path(type_: str) -> Path:
    return SCHEMAS / f"{type_}.json"


def render(type_: str) -> str:
    return json.dumps(schema_for(type_), indent=2, sort_keys=True) + "\n"


def write_schemas() -> list[Path]:
    SCHEMAS.mkdir(exist_ok=True)
    out = []
    for type_ in CATALOG:
        p = schema_path(type_)
        p.write_text(render(type_))
        out.append(p)
    return out


if __name__ == "__main__":
    for p in write_schemas():
        print(p.relative_to(HERE.parent))
