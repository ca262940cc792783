"""The event catalog: typed CloudEvents envelopes, their data models, schemas and samples."""

from events.catalog import CATALOG, T, model_for
from events.codec import BadEvent, from_dict, from_http_request, from_json, to_json
from events.envelope import Event, consequence_id, new_id

__all__ = [
    "CATALOG",
    "BadEvent",
    "Event",
    "T",
    "consequence_id",
    "from_dict",
    "from_http_request",
    "from_json",
    "model_for",
    "new_id",
    "to_json",
]
