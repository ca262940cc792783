"""Releases as the edges see them: one model, one id, one validation, one event.

Webhook intake and the feed poller both reduce what they read to a :class:`Release`, validate it
against the fleet and emit the same ``version.released`` (same deterministic id), so a release
announced by both is one event on the bus.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from events.catalog import T, VersionReleased
from events.envelope import Event, consequence, consequence_id
from shared.domain.fleet import Fleet
from shared.domain.versions import BadVersion, parse_version

__all__ = ["Refused", "Release", "kind_of", "release_event", "release_id", "validate_release"]


class Refused(Exception):
    """Bad input refused at the edge: HTTP ``status``, a reason, and the field it concerns."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.field = field

    def body(self) -> dict[str, str]:
        """The answer's JSON body: ``{"error": ..., "field": ...}``."""
        return {"error": self.error} | ({"field": self.field} if self.field else {})


class Release(BaseModel):
    """A release both bodies (and the feed poller) reduce to, before validation against the fleet."""

    product: str
    version: str
    released_at: datetime | None = None
    url: str | None = None
    origin: str = "webhook"


def release_id(product: str, version: str) -> str:
    """The id of ``version.released`` for a release, whoever announces it (dedupes across sources)."""
    return consequence_id(T.VERSION_RELEASED, product, version)


def validate_release(fleet: Fleet | None, release: Release) -> Release:
    """Refuse (422) an unknown product or a version that does not parse for it."""
    products = fleet.products if fleet is not None else set()
    if release.product not in products:
        raise Refused(
            422,
            f"unknown product {release.product!r}; known: {', '.join(sorted(products)) or 'none'}",
            "product",
        )
    try:
        parse_version(kind_of(fleet, release.product), release.version)
    except BadVersion as exc:
        raise Refused(422, f"version does not parse for {release.product}: {exc}", "version") from None
    return release


def release_event(release: Release, now: datetime) -> Event[VersionReleased]:
    """``version.released`` with the deterministic id; a missing release date is taken as ``now``."""
    data = VersionReleased(
        product=release.product,
        version=release.version,
        released_at=release.released_at or now,
        url=release.url,
        origin=release.origin,
    )
    return consequence(
        T.VERSION_RELEASED,
        data,
        key=(T.VERSION_RELEASED, release.product, release.version),  # release_id's
        source=f"/upshift/{release.origin}",
        subject=release.product,
        time=now,
    )


def kind_of(fleet: Fleet | None, product: str) -> str:
    # Versions order per vendor: parse by the kind of a target that follows this product.
    for target in fleet.targets if fleet is not None else ():
        if target.product_key == product:
            return target.kind
    return product
