"""What a function is: an async callable ``(event, ctx) -> events to emit``, and its context.

**Handlers are replays** (DESIGN §6.7) — the rule every function follows. The bus delivers at
least once and publishes what a handler returns only when it commits the input's ack (the
outbox). Whatever a handler writes to the store *before* that commit (claims, the ledger, waves
documents) survives a process killed right after the write, so a redelivery finds it. Every such
write must therefore make the redelivery return **the same consequences with the same ids** —
the bus drops the copies — and never "already done, emit nothing", never a second vendor call:

* consequence ids are derived from the run and the step (``events.envelope.consequence_id``),
  never from the delivery, so a replay's events are the first delivery's events;
* a state that means "this was done" carries what is needed to emit it again (a claim keeps the
  job id or the refusal; a run's end state keeps its outcome; a waves document who released what);
* a handler that finds a state written by something *else* (a run cancelled, superseded) may
  emit nothing: those consequences were never its own.

``shared/crashpoints.py`` names the instants between such writes and the outbox; a test kills
the process at each one in turn.

``@upshift_function`` marks a callable as an Upshift function and records the data model it
expects (from its annotation), so the runtime can refuse a manifest that wires it to the
wrong event type. The trigger itself lives only in ``serverless.yml``.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from events.envelope import Event
from shared.bus.base import Emitted
from shared.clock import Clock
from shared.errors import ConfigError
from shared.store import Store

if TYPE_CHECKING:  # kept out of a cold import: the fleet and the vendor clients are heavy
    from structlog.typing import FilteringBoundLogger

    from shared.clouds.registry import CloudClients
    from shared.domain.fleet import Fleet

__all__ = ["Context", "FunctionCallable", "HttpReply", "HttpRequest", "UpshiftFunction", "upshift_function"]


@dataclass
class Context:
    """Everything a function may use. Functions keep no state of their own between calls."""

    function: str
    store: Store
    clock: Clock
    #: ``shared.log.get_logger(...)``: structlog's filtering bound logger.
    log: FilteringBoundLogger
    #: The loaded fleet config (targets, windows, policies, clouds); None where not configured.
    fleet: Fleet | None = None
    #: Vendor API clients, built lazily from the fleet's cloud config.
    clouds: CloudClients | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def need_fleet(self) -> Fleet:
        """The fleet, for functions that cannot work without one (ConfigError where none is loaded)."""
        if self.fleet is None:
            raise ConfigError("fleet", f"{self.function} needs a fleet file and none is loaded")
        return self.fleet

    def need_clouds(self) -> CloudClients:
        """The vendor clients, for functions that call vendors (ConfigError where none are built)."""
        if self.clouds is None:
            raise ConfigError("clouds", f"{self.function} calls vendors and no cloud clients are built")
        return self.clouds


@dataclass(frozen=True)
class HttpRequest:
    """A framework-neutral HTTP request (aiohttp in ``serve``, Starlette under functions-framework)."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class HttpReply:
    """What an ``http`` function answers, and the events to publish *before* answering."""

    status: int
    body: dict[str, Any]
    events: Sequence[Emitted] = ()
    #: Response headers, e.g. ``WWW-Authenticate`` on a 401.
    headers: Mapping[str, str] = field(default_factory=dict)


#: An Upshift function: ``(event, ctx)`` → the events to emit, or, for an ``http`` function,
#: ``(request, ctx)`` → its :class:`HttpReply`.
FunctionCallable = Callable[..., Awaitable[Sequence[Emitted] | HttpReply | None]]


@dataclass(frozen=True)
class UpshiftFunction:
    fn: FunctionCallable
    name: str
    #: The ``data`` model from the ``Event[Model]`` annotation of the first parameter, if any.
    data_model: type[BaseModel] | None

    async def __call__(self, event: Any, ctx: Context) -> Sequence[Emitted] | HttpReply | None:
        return await self.fn(event, ctx)


def upshift_function(fn: FunctionCallable) -> UpshiftFunction:
    hints = typing.get_type_hints(fn)
    first = next(iter(hints.values()), None)
    model = None
    if first is not None and getattr(first, "__pydantic_generic_metadata__", None):
        meta = first.__pydantic_generic_metadata__
        if meta["origin"] is Event and meta["args"]:
            model = meta["args"][0]
    return UpshiftFunction(fn=fn, name=fn.__name__, data_model=model)
