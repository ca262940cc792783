"""structlog setup: JSON lines in production, readable on a TTY, secrets redacted everywhere.

Inside a handler, ``bind_event(event)`` puts the event's id, type, runid, target and stage in the
context, so every line logged while handling it carries them without the handler passing them.

aiohttp's own loggers (``aiohttp.server``, ``aiohttp.access``, …) write through the same
processors (:data:`FOREIGN`): JSON like ours, redacted, and without the exception's text or
traceback — a parser rejection's message quotes the raw request bytes (header lines, tokens
included). A client's fault (a malformed request, a connection gone) is logged at ``info``.

structlog imports rich (and through it pygments) at its own import whenever rich is installed,
only for its console renderer's tracebacks: ~180 ms of a deployed function's cold start. A
process whose stderr is not a TTY renders JSON, so there structlog is imported as if rich were
absent (structlog's documented fallback); rich itself stays importable for whoever wants it. The
one difference: ``configure(json=False)`` in such a process prints plain tracebacks, not rich's.
Likewise greenlet (installed for playwright), which structlog imports only so that its deprecated
``structlog.threadlocal`` keeps a context per greenlet: Upshift's context is contextvars
(:func:`bind_event`) and it never uses that module, so structlog is always imported as if greenlet
were absent (a C extension's load, ~1 ms of a deployed function's cold start); greenlet itself
stays importable. The one difference: ``structlog.threadlocal``, if anyone used it, would keep
its context per thread.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any


def _import_structlog() -> None:
    """Import structlog; without greenlet, and without rich when nothing will render on a
    terminal (see above). A package some other import already loaded is left to structlog."""
    if "structlog" in sys.modules:
        return
    hidden = [] if "greenlet" in sys.modules else ["greenlet"]
    if not ("rich" in sys.modules or sys.stderr is None or sys.stderr.isatty()):
        hidden.append("rich")
    # A None in sys.modules makes ``import rich`` raise ImportError (the import system's
    # documented behaviour), which structlog.dev and structlog.tracebacks take as "no rich", and
    # structlog.threadlocal as "no greenlet" (threading.local then).
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


_import_structlog()
import structlog  # noqa: E402  (after the import above decided how structlog sees rich)

__all__ = [
    "FOREIGN",
    "REDACTED",
    "bind_correlation",
    "bind_event",
    "configure",
    "get_logger",
    "is_secret_key",
    "redact",
]

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


#: The standard-library loggers routed through structlog by :func:`configure`.
FOREIGN = ("aiohttp",)
#: Exceptions (by class name, anywhere in the MRO: no aiohttp import here) that are the client's
#: doing, not the server's: logged at info.
_CLIENT_FAULTS = frozenset(
    {"HttpProcessingError", "ConnectionError", "RequestPayloadError", "CancelledError"}
)


def _foreign_record(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A standard-library record (aiohttp's): its logger and level, the exception's type only."""
    record: logging.LogRecord = event_dict["_record"]
    event_dict["event"] = str(event_dict.get("event", ""))[:200]
    event_dict["logger"] = record.name
    level = record.levelname.lower()
    exc_info = event_dict.pop("exc_info", None)
    exc = exc_info[1] if isinstance(exc_info, tuple) else None
    if exc is not None:
        event_dict["error_type"] = type(exc).__name__
        status = getattr(exc, "code", None) or getattr(exc, "status", None)
        if isinstance(status, int):
            event_dict["status"] = status
        if _CLIENT_FAULTS & {c.__name__ for c in type(exc).__mro__}:
            level = "info"
    event_dict["level"] = level
    return event_dict


_foreign_handler: logging.Handler | None = None
_configured = False


def configure(*, json: bool | None = None, level: int = logging.INFO, stream: Any = None) -> None:
    """Configure structlog once per process. ``json=None`` picks JSON unless stderr is a TTY."""
    global _configured
    out = stream or sys.stderr
    use_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=True)
    )
    global _foreign_handler
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_foreign_record, structlog.processors.TimeStamper(fmt="iso", utc=True)],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    for name in FOREIGN:
        foreign = logging.getLogger(name)
        if _foreign_handler is not None:
            foreign.removeHandler(_foreign_handler)
        foreign.addHandler(handler)
        foreign.setLevel(level)
        foreign.propagate = False  # not also printed raw by whatever the root logger has
    _foreign_handler = handler
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


def bind_correlation(event: Any) -> None:
    """Put the event's correlation fields in the current context for good: for a task that
    handles one delivery (the buses), where the context ends with the task."""
    structlog.contextvars.bind_contextvars(**event.correlation())


@contextmanager
def bind_event(event: Any) -> Iterator[None]:
    """Every log line inside the block carries the event's correlation fields."""
    with structlog.contextvars.bound_contextvars(**event.correlation()):
        yield
