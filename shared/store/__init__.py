"""The store: a compare-and-set KV (SQLite table or JetStream KV) with claims and a ledger on top."""

from __future__ import annotations

from dataclasses import dataclass

from shared.bus.url import parse_bus_url
from shared.store.audit import Audit
from shared.store.base import KV, Entry, escape_key, unescape_key
from shared.store.claims import Claim, Claims, claim_key
from shared.store.ledger import DROPPED, TERMINAL, Ledger, RunState

__all__ = [
    "DROPPED",
    "KV",
    "TERMINAL",
    "Audit",
    "Claim",
    "Claims",
    "Entry",
    "Ledger",
    "RunState",
    "Store",
    "claim_key",
    "escape_key",
    "open_kv",
    "open_store",
    "unescape_key",
]


def open_kv(url: str) -> KV:
    """The KV backend for a bus URL: same SQLite file, or JetStream KV on the same server."""
    parsed = parse_bus_url(url)
    if parsed.scheme == "sqlite":
        from shared.store.sqlite import SqliteKV

        return SqliteKV(parsed.location)
    from shared.store.nats import NatsKV

    return NatsKV(
        parsed.location, namespace=parsed.options.get("namespace", "upshift"), replicas=parsed.replicas
    )


@dataclass
class Store:
    kv: KV

    @property
    def claims(self) -> Claims:
        return Claims(self.kv)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.kv)

    @property
    def audit(self) -> Audit:
        return Audit(self.kv)

    async def start(self) -> None:
        await self.kv.start()

    async def close(self) -> None:
        await self.kv.close()


def open_store(url: str) -> Store:
    return Store(open_kv(url))
