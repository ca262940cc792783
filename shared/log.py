"""structlog setup: JSON lines in production, readable on a TTY, secrets redacted everywhere.

Inside a handler, ``bind_event(event)`` puts the event's id, type, runid, target and stage in the
context, so every line logged while handling it carries them without the handler passing them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

__all__ = ["REDACTED", "bind_event", "configure", "get_logger", "is_secret_key", "redact"]

REDACTED = "***"
# Keys whose *values* must never be written: '*_key', anything with 'secret', passwords, tokens,
# Authorization headers, signatures and credentials in any casing.
_SECRET = re.compile(
    r"(?i)(^|[_\-.])key$|secret|passw(or)?d|token|authori[sz]ation|signature|credential|^sk$|^ak$|cookie"
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET.search(key))


def redact(value: Any) -> Any:
    """Copy of ``value`` with every secret-looking key's value replaced, recursively."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {k: (REDACTED if is_secret_key(k) else redact(v)) for k, v in event_dict.items()}


_configured = False


def configure(*, json: bool | None = None, level: int = logging.INFO, stream: Any = None) -> None:
    """Configure structlog once per process. ``json=None`` picks JSON unless stderr is a TTY."""
    global _configured
    out = stream or sys.stderr
    use_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=True)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str = "upshift") -> Any:
    if not _configured:
        configure()
    return structlog.get_logger(name)


@contextmanager
def bind_event(event: Any) -> Iterator[None]:
    """Every log line inside the block carries the event's correlation fields."""
    with structlog.contextvars.bound_contextvars(**event.correlation()):
        yield
