"""A consumer in its own process, for tests that kill -9 it.

usage: python -m tests.bus._child URL CONSUMER MARKER MODE [N]
  Touches MARKER.ready once its durable consumer is registered.
  MODE hang: on delivery, touch MARKER and never return (the event is never acked).
  MODE emit: on delivery, touch MARKER and emit N echo events (runid=kill) with deterministic ids.
  MODE lose: like emit, but the events are ``lost-<i>`` with ids of their own (the process is
  armed with UPSHIFT_CRASH_AT to die before they are committed: none may ever be delivered).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from events import T
from events.catalog import Echo
from shared.bus import Subscription, open_bus


async def main(url: str, consumer: str, marker: str, mode: str, n: int) -> None:
    bus = open_bus(url)

    async def handler(event):
        if event.runid == "kill":  # our own outputs also match target=in: nothing to do
            return []
        Path(marker).touch()
        if mode == "hang":
            await asyncio.Event().wait()
        if mode == "lose":
            return [
                event.follow(
                    T.ECHO, Echo(message=f"lost-{i}", reply=False), runid="kill", id_parts=("lost", i)
                )
                for i in range(n)
            ]
        return [  # the ids the test's takeover emits too: a second copy must be dropped
            event.follow(T.ECHO, Echo(message=f"out-{i}", reply=False), runid="kill", id_parts=(i,))
            for i in range(n)
        ]

    bus.subscribe(
        Subscription(consumer, T.ECHO, {"target": "in"}, handler, max_attempts=50, backoff_base=0.01)
    )
    await bus.start()
    Path(marker + ".ready").touch()  # the durable consumer exists from here on
    await bus.run()


if __name__ == "__main__":
    url, consumer, marker, mode = sys.argv[1:5]
    asyncio.run(main(url, consumer, marker, mode, int(sys.argv[5]) if len(sys.argv) > 5 else 0))
