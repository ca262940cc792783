"""URL encoding for vendor calls: ids put into paths, and query strings.

Both encode with ``~`` safe and everything else reserved percent-encoded (``/`` included in a
path segment), so an id can never change which resource a path names. A query is encoded once,
in the order given, and those exact bytes are sent — signers that sign the query as sent
(NAVER) rely on that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote

__all__ = ["Params", "encode_query", "quote_segment"]

#: Query parameters: a mapping, or pairs when a name repeats.
Params = Mapping[str, str] | Sequence[tuple[str, str]]


def quote_segment(value: str) -> str:
    """One path segment, percent-encoded (``/`` included), for ids put into URL paths."""
    return quote(str(value), safe="~")


def encode_query(params: Params | None) -> str:
    """``k=v&...`` percent-encoded (``~`` safe), in the order given; names may repeat."""
    if not params:
        return ""
    pairs = params.items() if isinstance(params, Mapping) else params
    return "&".join(f"{quote(str(k), safe='~')}={quote(str(v), safe='~')}" for k, v in pairs)
