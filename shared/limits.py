"""The limits of every edge, in one place: body and header sizes, JSON nesting, string lengths,
read timeouts.

A base module (like ``errors`` and ``log``), so the domain (a version's length), the event
envelope (attribute lengths), the codec (nesting), the release webhook and the aiohttp server all
read the same numbers. :data:`LIMITS` is what they use; a test builds a server with a
:class:`Limits` of its own (short timeouts) instead of patching.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["LIMITS", "JsonRefused", "Limits", "check_bounded", "loads_bounded"]


@dataclass(frozen=True)
class Limits:
    """What an edge accepts. Sizes in bytes or characters, times in seconds."""

    #: A request body (``POST /events``, ``/hooks/release``), after decompression: over it is 413.
    max_body: int = 1 << 20
    #: One header line (request line included) and one header field; over it aiohttp answers 400/431.
    max_header_line: int = 8190
    #: How many header lines a request may carry.
    max_headers: int = 100
    #: JSON nesting (objects and arrays) of a body; deeper is refused before anything reads it.
    max_depth: int = 32
    #: A name-like string: a product, a version, a tag, a delivery id.
    max_name: int = 64
    #: A URI or URI-reference (``html_url``, ``url``, a CloudEvents ``source`` or ``subject``).
    max_uri: int = 2048
    #: A CloudEvents extension attribute's name (the spec: lower-case alphanumerics, at most 20).
    max_extension_name: int = 20
    #: A CloudEvents extension attribute's value.
    max_extension_value: int = 2048
    #: How many extension attributes an event may carry beyond Upshift's own.
    max_extensions: int = 16
    #: From the headers to the last byte of the body: a client slower than this gets 408.
    body_read_timeout_s: float = 30.0
    #: A connection with no request in progress (before the first, between keep-alive requests).
    idle_timeout_s: float = 15.0
    #: On SIGTERM, how long in-flight requests may finish before they are cancelled.
    shutdown_timeout_s: float = 5.0


LIMITS = Limits()


class JsonRefused(ValueError):
    """A JSON document refused by :func:`loads_bounded`; ``field`` is where (``""``: the whole)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: One decoder for every call: ``json.loads`` given a hook builds a new one, scanner and all, each
#: time (a cost per bus delivery); the shared one decodes alike.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _decode(text: str | bytes) -> Any:
    if isinstance(text, str) and not text.startswith("\ufeff"):
        return _DECODER.decode(text)
    return json.loads(text, parse_constant=_no_constant)  # a BOM refused, as json.loads words it


def loads_bounded(raw: str | bytes, limits: Limits = LIMITS) -> Any:
    """``json.loads`` that refuses, as :class:`JsonRefused`, what JSON readers downstream choke on:
    nesting deeper than ``limits.max_depth`` (named by the top-level key it is under), lone
    surrogates (``"\\ud800"``: not Unicode), ``NaN``/``Infinity`` (not JSON) and malformed text."""
    try:
        # Decoded as json.loads decodes bytes, so the fast path below sees the text it parsed.
        text = raw.decode(json.detect_encoding(raw), "surrogatepass") if isinstance(raw, bytes) else raw
        doc = _decode(text)
    except RecursionError:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        raise JsonRefused(
            _deep_key(text, limits.max_depth), f"nested deeper than {limits.max_depth} levels"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRefused("", f"malformed JSON: {exc}") from None
    if not _plainly_bounded(text, limits.max_depth):
        check_bounded(doc, limits)
    return doc


#: A JSON escape of a UTF-16 surrogate (half of a pair, or a lone one).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _plainly_bounded(text: str, max_depth: int) -> bool:
    """True when ``text`` cannot parse to anything :func:`check_bounded` refuses, so the walk over
    every value (most of a bus delivery's decoding time) can be skipped: no surrogate in it (it
    encodes to UTF-8) nor an escape that could decode to one, and at most ``max_depth`` brackets
    (every object or array opens with one, so none nests deeper). False only means "walk it"."""
    if text.count("{") + text.count("[") > max_depth:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\\u" not in text or not _SURROGATE_ESCAPE.search(text)


def check_bounded(doc: Any, limits: Limits = LIMITS) -> None:
    """:class:`JsonRefused` when ``doc`` (parsed JSON: dicts, lists, scalars) nests deeper than
    ``limits.max_depth`` (named by its top-level key) or holds a string that is not Unicode
    (named by its dotted path). Iterative: a deep document cannot make the check recurse."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict | list):
            if len(path) >= limits.max_depth:
                raise JsonRefused(path[0] if path else "", f"nested deeper than {limits.max_depth} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in items:
                name = str(key)
                if isinstance(key, str):
                    _check_text(key, ".".join(path))  # (the key itself is no name to echo back)
                stack.append((child, (*path, name)))
        elif isinstance(value, str):
            _check_text(value, ".".join(path))


def _deep_key(text: str, max_depth: int) -> str:
    """The top-level key under which ``text`` (too deep for ``json.loads``) first nests deeper
    than ``max_depth``; ``""`` when the top level is not an object. Only on that failure path."""
    depth, in_string, escaped = 0, False, False
    start, last, key, top_is_object = 0, "", "", False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if depth == 1:
                    last = text[start:i]
        elif ch == '"':
            in_string, start = True, i + 1
        elif ch in "[{":
            depth += 1
            if depth == 1:
                top_is_object = ch == "{"
            elif depth == 2:
                key = last if top_is_object else ""
            if depth > max_depth:
                return key
        elif ch in "]}":
            depth -= 1
    return key


def _check_text(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused(field, "not valid Unicode (a lone surrogate escape)") from None
