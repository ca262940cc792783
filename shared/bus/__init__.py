"""The event bus: one protocol, two backends chosen by URL.

* ``sqlite:///path/to/upshift.db`` (default ``./.upshift/upshift.db``) — embedded, one file.
* ``nats://host:port`` — NATS JetStream.

Query parameters common to both: ``lease`` (seconds a delivery stays invisible to other
consumers before it is redelivered; NATS ``ack_wait``). NATS also takes ``namespace`` (prefix
of stream, consumer and subject names; default ``upshift``).
"""

from __future__ import annotations

from shared.bus.base import (
    Bus,
    DeadLetter,
    Delayed,
    Emitted,
    Handler,
    Subscription,
    backoff_delay,
    matches,
    publish_all,
)
from shared.bus.url import DEFAULT_URL, BusUrl, open_bus, parse_bus_url

__all__ = [
    "DEFAULT_URL",
    "Bus",
    "BusUrl",
    "DeadLetter",
    "Delayed",
    "Emitted",
    "Handler",
    "Subscription",
    "backoff_delay",
    "matches",
    "open_bus",
    "parse_bus_url",
    "publish_all",
]
