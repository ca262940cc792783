"""Time as the vendor tells it: "recent" compares vendor stamps with the vendor's own clock.

A claim keeps the vendor's time at claim, learnt from its ``Date`` header (:class:`Since`), so a
skewed vendor clock neither hides our own failed task nor adopts an old one (DESIGN §6.7). The
margins allow for the header's one-second resolution, the answer's transit and the vendor's own
clocks; without any ``Date`` our own clock stands in, with a wide margin.

Instants are written to the ledger and compared with vendor stamps as ISO 8601 with ``Z``
(:func:`iso`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.clock import Clock
from shared.clouds.client import BaseClient

__all__ = ["CLOCK_MARGIN", "UNKNOWN_SKEW_MARGIN", "Since", "iso", "recent", "vendor_now"]

#: Domain seconds a vendor stamp may precede the vendor's clock at claim and still be ours: the
#: ``Date`` header's one-second resolution, the answer's transit, and the vendor's own clocks.
CLOCK_MARGIN = 60.0
#: Without any ``Date`` from the vendor we compare with our own clock, and allow this much skew.
UNKNOWN_SKEW_MARGIN = 15 * 60.0


def iso(dt: datetime) -> str:
    """``dt`` as the ledger spells instants: ISO 8601, UTC as ``Z``."""
    return dt.isoformat().replace("+00:00", "Z")


def vendor_now(client: BaseClient, clock: Clock) -> float | None:
    """The vendor's clock now (as its last ``Date`` header tells), or None before any answer."""
    return client.vendor_epoch(clock.speed)


@dataclass(frozen=True, slots=True)
class Since:
    """When a claim was taken, in the vendor's clock (DESIGN §6.7: skew learnt from ``Date``).

    ``vendor_at`` was read at claim time when the client had heard from the vendor; otherwise the
    skew is learnt now, from the answers of the reconcile's own look (called after it)."""

    domain_at: float
    vendor_at: float | None
    client: BaseClient
    clock: Clock

    def vendor_epoch(self) -> tuple[float, float]:
        """(the claim's instant in the vendor's clock, the margin to allow around it)."""
        if self.vendor_at is not None:
            return float(self.vendor_at), CLOCK_MARGIN
        now = vendor_now(self.client, self.clock)
        if now is None:
            return self.domain_at, UNKNOWN_SKEW_MARGIN
        return self.domain_at + (now - self.clock.timestamp()), CLOCK_MARGIN


def recent(stamp: str | None, since: Since) -> bool:
    """Did a vendor object created at ``stamp`` (vendor clock) possibly come from a call claimed
    at ``since``? Unknown or unparsable stamps count as recent: adopting is the safe side."""
    if not stamp:
        return True
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return True
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    claimed, margin = since.vendor_epoch()
    return at.timestamp() >= claimed - margin
