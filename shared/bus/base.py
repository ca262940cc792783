"""The Bus protocol every backend implements, and the pieces they share.

Contract (checked by ``tests/bus/conformance.py`` against every backend):

* ``publish(event, delay=0)`` makes the event durable before returning; an event whose id was
  already published is dropped (returns False). With ``delay`` it is delivered no earlier than
  ``delay`` seconds from now.
* ``subscribe(name, type, where, handler)`` registers a *durable* consumer called ``name``: every
  event of ``type`` whose attributes equal every ``where`` item is delivered to it at least once,
  even across restarts (events published while it was down included, once it has been
  registered).
* A handler returns the events it emits (``Event`` or ``Delayed``). They are durably published
  **before** the input is acknowledged; on SQLite in one transaction (outbox).
* A handler that raises is redelivered later with exponential backoff (``RetryLater`` sets the
  delay); after ``max_attempts`` deliveries the event is dead-lettered and visible through
  ``dead_letters()``, and the bus publishes ``event.deadlettered`` (:func:`dead_letter_event`)
  *with* the dead letter (SQLite: same transaction), so the run it belonged to is ended, not left
  open (DESIGN §6.8).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from events.catalog import DeadLettered, T
from events.envelope import Event, consequence

__all__ = [
    "Bus",
    "DeadLetter",
    "Delayed",
    "Emitted",
    "Handler",
    "Subscription",
    "backoff_delay",
    "dead_letter_event",
    "matches",
    "publish_all",
]


@dataclass(frozen=True, slots=True)
class Delayed:
    """An emitted event to be delivered ``delay`` seconds after the handler's ack."""

    event: Event[Any]
    delay: float


Emitted = Event[Any] | Delayed
Handler = Callable[[Event[Any]], Awaitable[Sequence[Emitted] | None]]


@dataclass(frozen=True, slots=True)
class Subscription:
    name: str
    type: str
    where: Mapping[str, str] = field(default_factory=dict)
    handler: Handler | None = None
    max_attempts: int = 5
    #: backoff after the n-th failed attempt: min(max_backoff, base * 2**(n-1)), full jitter.
    backoff_base: float = 0.5
    max_backoff: float = 60.0
    concurrency: int = 16


@dataclass(frozen=True, slots=True)
class DeadLetter:
    consumer: str
    event: Event[Any]
    attempts: int
    error: str


def matches(event: Event[Any], type_: str, where: Mapping[str, str]) -> bool:
    """True when ``event`` is of ``type_`` and every ``where`` attribute equals the event's."""
    if event.type != type_:
        return False
    for key, want in where.items():
        got = getattr(event, key, None)
        if got is None:
            got = getattr(event.data, key, None)
        if got != want:
            return False
    return True


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**(attempt-1))).

    Full jitter spreads a herd of retries evenly, so a vendor that throttled us is not hit again
    by all of them at the same instant.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0.0, ceiling)


def dead_letter_event(consumer: str, event: Event[Any], attempts: int, error: str) -> Event[Any] | None:
    """The ``event.deadlettered`` announcing that ``consumer`` gave up on ``event`` (one id per
    consumer and event: a dead letter written twice announces once). None for a dead letter of
    that announcement itself, so a broken consumer of it cannot loop."""
    if event.type == T.EVENT_DEAD_LETTERED:
        return None
    d = event.data
    # Validated, not constructed: ``kind`` comes as a free string (an envelope attribute or any
    # data model's field) and DeadLettered checks it is a Kind, as its constructor would.
    data = DeadLettered.model_validate(
        {
            "consumer": consumer,
            "event_type": event.type,
            "event_id": event.id,
            "attempts": attempts,
            "error": error[:2000],
            "target": event.target or getattr(d, "target", None),
            "kind": event.kind or getattr(d, "kind", None),
            "stage": event.stage or getattr(d, "stage", None),
            "to_version": getattr(d, "to_version", None),
        }
    )
    return consequence(
        T.EVENT_DEAD_LETTERED,
        data,
        key=("deadletter", consumer, event.id),
        source="/upshift/bus",
        subject=event.subject,
        runid=event.runid,
        target=data.target,
        kind=data.kind,
        stage=data.stage,
    )


async def publish_all(bus: Bus, emitted: Sequence[Emitted] | None) -> None:
    """Publish what a function emitted, honouring ``Delayed``; each publish is durable on return."""
    for item in emitted or ():
        if isinstance(item, Delayed):
            await bus.publish(item.event, delay=item.delay)
        else:
            await bus.publish(item)


@runtime_checkable
class Bus(Protocol):
    """A durable, at-least-once event bus."""

    url: str

    async def start(self) -> None:
        """Connect / open files, create streams and tables. Idempotent."""

    async def close(self) -> None:
        """Stop consuming, wait for in-flight handlers, release resources."""

    async def publish(self, event: Event[Any], *, delay: float = 0.0) -> bool:
        """Durably publish; False when an event with that id was already published (dropped)."""

    def subscribe(self, sub: Subscription) -> None:
        """Register a durable consumer. Call before ``run``; after ``start`` it exists only once
        ``start`` (or ``run``) is called again — events published before that may not reach it."""

    async def run(self) -> None:
        """Deliver events to the subscribed handlers until ``close`` is called."""

    async def dead_letters(self) -> list[DeadLetter]:
        """Events that exhausted their attempts, per consumer."""
