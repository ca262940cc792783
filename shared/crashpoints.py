"""Named commit points of the pipeline, where a test may kill the process (DESIGN §6.1, §6.7).

Every place where one durable write is done and the next not yet is named here, in the order a
stage passes them. ``hit(point)`` is a no-op unless the environment names that point:

* ``UPSHIFT_CRASH_AT=<point>`` — SIGKILL this process the first time ``point`` is passed
  (``<point>@<n>``: the n-th time);
* ``UPSHIFT_CRASH_MODE=pause`` — instead of dying, write the marker file and block the whole
  process (event loop included) until the marker is deleted: a test can kill nats-server, or
  this process, at exactly that instant;
* ``UPSHIFT_CRASH_FILE=<path>`` — the marker written right before dying/pausing (the point's
  name), so a test knows the kill landed where it asked and not somewhere else.

The environment is read once at import: the hot path pays one comparison when nothing is armed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

__all__ = ["POINTS", "hit"]

#: Every point, in pipeline order. A test walks this tuple and checks every ``hit`` names one.
POINTS: tuple[str, ...] = (
    # stage functions (shared engine): claim → one vendor call → record → ledger → outbox
    "stage.claimed",  # the claim is written; the vendor has not been called
    "stage.called",  # the vendor answered; nothing of the answer is written yet
    "stage.recorded",  # the claim holds the job id (or refusal); the ledger does not yet
    "stage.noted",  # the ledger holds the stage's state; the outbox has not committed
    # track_job: a status look is noted in the ledger; its consequence not yet published
    "poll.noted",
    # advance: the run's end state is in the ledger; upgrade.succeeded/failed not yet published
    "advance.ended",
    # the bus: a handler returned; its outputs and the input's ack not yet committed / published
    "outbox.before_commit",
    # the bus: outputs durable (NATS: every publish acked), the input not yet acknowledged
    "outbox.published",
)

_SPEC = os.environ.get("UPSHIFT_CRASH_AT") or None
_MODE = os.environ.get("UPSHIFT_CRASH_MODE", "kill")
_FILE = os.environ.get("UPSHIFT_CRASH_FILE") or None
_point, _, _nth = (_SPEC or "").partition("@")
_AT: str | None = _point or None
_N = int(_nth) if _nth.isdigit() else 1
_seen = 0

if _AT is not None and _AT not in POINTS:
    raise RuntimeError(f"UPSHIFT_CRASH_AT names no crash point: {_AT!r} (known: {', '.join(POINTS)})")


def hit(point: str) -> None:
    """Pass ``point``; dies (or pauses) here when the environment armed it."""
    global _seen
    if _AT is None or point != _AT:
        return
    _seen += 1
    if _seen != _N:
        return
    if _FILE:
        Path(_FILE).write_text(point)
    if _MODE == "pause" and _FILE:
        while Path(_FILE).exists():  # blocks the loop on purpose: nothing else may run meanwhile
            time.sleep(0.02)
        return
    os.kill(os.getpid(), signal.SIGKILL)
