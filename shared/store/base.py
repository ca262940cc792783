"""The KV protocol every store backend implements; claims and the ledger are built on it.

A bucket holds JSON objects under string keys, each with a revision that grows on every
write. ``create`` and ``update`` are compare-and-set: of two concurrent writers exactly one wins,
the other gets :class:`~shared.errors.Conflict`. SQLite tables and JetStream KV buckets both give
this natively, so claims and the ledger are written once, above the protocol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["KV", "Entry", "Value", "escape_key", "unescape_key"]

Value = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: Value
    revision: int


@runtime_checkable
class KV(Protocol):
    url: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, bucket: str, key: str) -> Entry | None:
        """The current entry, or None when absent (or deleted)."""

    async def create(self, bucket: str, key: str, value: Value) -> int:
        """Write only if absent; the new revision. Raises Conflict when the key exists."""

    async def update(self, bucket: str, key: str, value: Value, revision: int) -> int:
        """Write only if the current revision is ``revision``; the new one. Raises Conflict otherwise."""

    async def put(self, bucket: str, key: str, value: Value) -> int:
        """Unconditional write; the new revision."""

    async def delete(self, bucket: str, key: str, revision: int | None = None) -> None:
        """Remove (only at ``revision`` when given; Conflict otherwise). Absent keys are fine."""

    async def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys present in the bucket that start with ``prefix``, sorted."""


_SAFE = re.compile(r"[A-Za-z0-9_\-.]")


def escape_key(key: str) -> str:
    """Map any string onto JetStream's key alphabet, preserving prefixes and order-insensitive.

    Characters outside ``[A-Za-z0-9_-.]`` become ``=XX`` (UTF-8 bytes in hex); ``=`` itself too.
    Leading/trailing dots and empty tokens are not allowed by NATS, so dots are escaped when
    they would make one.
    """
    out: list[str] = []
    for i, ch in enumerate(key):
        dot_ok = ch == "." and 0 < i < len(key) - 1 and key[i - 1] != "." and key[i + 1] != "."
        if (_SAFE.match(ch) and ch != ".") or dot_ok:
            out.append(ch)
        else:
            out.extend(f"={b:02X}" for b in ch.encode())
    return "".join(out) or "=00"


def unescape_key(key: str) -> str:
    if key == "=00":
        return ""
    raw = bytearray()
    i = 0
    while i < len(key):
        if key[i] == "=":
            raw.append(int(key[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(key[i].encode())
            i += 1
    return raw.decode()
