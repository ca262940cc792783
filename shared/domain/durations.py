"""Durations as the fleet file and chat commands spell them: ``4h``, ``45m``, ``1h30m``, ``7d``, ``90s``."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

__all__ = ["Duration", "format_duration", "parse_duration"]

_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")


def parse_duration(value: Any) -> timedelta:
    """``"4h"``, ``"45m"``, ``"1h30m"``, ``"7d"``, ``"90s"``, or a number of seconds; never
    negative, never beyond what a ``timedelta`` holds (ValueError naming the value, not an
    OverflowError escaping as a traceback)."""
    if isinstance(value, timedelta):
        out = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a duration (a finite number of seconds)")
        out = _timedelta(value, seconds=value)
    elif isinstance(value, str) and (m := _DURATION.match(value)) and any(m.groups()):
        d, h, mi, s = (int(x or 0) for x in m.groups())
        out = _timedelta(value, days=d, hours=h, minutes=mi, seconds=s)
    else:
        raise ValueError(f"{str(value)[:80]!r} is not a duration like '4h', '45m', '1h30m', '7d'")
    if out < timedelta(0):
        raise ValueError(f"{value!r}: a duration must not be negative")
    return out


def format_duration(d: timedelta) -> str:
    """``1h30m``, ``45m``, ``20s``, ``48h``: a duration as the fleet file spells it (whole seconds;
    :func:`parse_duration` of it gives it back)."""
    h, rem = divmod(int(d.total_seconds()), 3600)
    m, s = divmod(rem, 60)
    return "".join(f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (s, "s")) if n) or "0s"


def _timedelta(value: object, **parts: float) -> timedelta:
    try:
        return timedelta(**parts)
    except OverflowError:
        raise ValueError(f"{str(value)[:80]!r} is too long a duration") from None


#: (the JSON Schema says what the file may hold — "4h" or seconds — not pydantic's ISO 8601)
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _DURATION.pattern, "examples": ["4h", "45m", "1h30m", "7d"]},
                {"type": "number"},
            ]
        }
    ),
]
