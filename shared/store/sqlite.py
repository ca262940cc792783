"""The KV protocol on SQLite: one table, revision-checked writes (compare-and-set).

It lives in the same file as the embedded bus, so ``sqlite:///path`` is one file for both.
Revisions come from one global counter, like JetStream's stream sequence: they only grow.

``defer`` lets a handler delivered by the bus on this same file hand a read-modify-write to the
bus, which applies it in the handler's outbox transaction (DESIGN §5: the ledger and the events
announcing it commit together). The change is a function of the current value, applied to the
value current *at commit*, exactly as :func:`shared.store.ledger.mutate` re-applies it after a
compare-and-set conflict.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from shared.bus.sqlite import connect, deferred, transaction
from shared.errors import Conflict
from shared.store.base import Entry, Value

__all__ = ["SqliteKV"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    bucket TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, revision INTEGER NOT NULL,
    PRIMARY KEY (bucket, key));
CREATE TABLE IF NOT EXISTS kv_seq (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL);
INSERT OR IGNORE INTO kv_seq(id, revision) VALUES (1, 0);
"""


class SqliteKV:
    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        if self._conn is None:
            self._conn = connect(self.path)
            self._conn.executescript(_SCHEMA)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteKV used before start()")
        return self._conn

    async def defer(self, bucket: str, key: str, change: Callable[[Value | None], Value]) -> Value | None:
        """Hand ``change`` to the outbox of the handler running now, when its bus writes this file:
        returns the value it would make of the current one (the handler may use it; the committed
        value is ``change`` of the value current at commit). None: no such outbox, write at once."""
        writes = deferred(self.path)
        if writes is None:
            return None
        entry = await self.get(bucket, key)
        guess = change(None if entry is None else dict(entry.value))

        def apply(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT value FROM kv WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
            new = change(None if row is None else json.loads(row[0]))
            conn.execute(_UPSERT, (bucket, key, json.dumps(new), _next_revision(conn)))

        writes.append(apply)
        return guess

    async def get(self, bucket: str, key: str) -> Entry | None:
        row = self.conn.execute(
            "SELECT value, revision FROM kv WHERE bucket = ? AND key = ?", (bucket, key)
        ).fetchone()
        return Entry(key, json.loads(row[0]), row[1]) if row else None

    async def create(self, bucket: str, key: str, value: Value) -> int:
        with transaction(self.conn) as conn:
            rev = _next_revision(conn)
            cur = conn.execute(
                "INSERT OR IGNORE INTO kv(bucket, key, value, revision) VALUES (?,?,?,?)",
                (bucket, key, json.dumps(value), rev),
            )
            if cur.rowcount == 0:
                raise Conflict(f"{bucket}/{key} exists")
        return rev

    async def update(self, bucket: str, key: str, value: Value, revision: int) -> int:
        return self._write(bucket, key, value, revision)

    async def put(self, bucket: str, key: str, value: Value) -> int:
        return self._write(bucket, key, value, None)

    def _write(self, bucket: str, key: str, value: Value, revision: int | None) -> int:
        with transaction(self.conn) as conn:
            rev = _next_revision(conn)
            if revision is None:
                conn.execute(_UPSERT, (bucket, key, json.dumps(value), rev))
            else:
                cur = conn.execute(
                    "UPDATE kv SET value = ?, revision = ? WHERE bucket = ? AND key = ? AND revision = ?",
                    (json.dumps(value), rev, bucket, key, revision),
                )
                if cur.rowcount == 0:
                    raise Conflict(f"{bucket}/{key} is not at revision {revision}")
        return rev

    async def delete(self, bucket: str, key: str, revision: int | None = None) -> None:
        if revision is None:
            self.conn.execute("DELETE FROM kv WHERE bucket = ? AND key = ?", (bucket, key))
            return
        cur = self.conn.execute(
            "DELETE FROM kv WHERE bucket = ? AND key = ? AND revision = ?", (bucket, key, revision)
        )
        if cur.rowcount == 0 and await self.get(bucket, key) is not None:
            raise Conflict(f"{bucket}/{key} is not at revision {revision}")

    async def keys(self, bucket: str, prefix: str = "") -> list[str]:
        rows = self.conn.execute(
            "SELECT key FROM kv WHERE bucket = ? AND substr(key, 1, ?) = ? ORDER BY key",
            (bucket, len(prefix), prefix),
        ).fetchall()
        return [r[0] for r in rows]


#: Write ``value`` at ``revision`` whether or not the key exists (``put`` and deferred writes).
_UPSERT = (
    "INSERT INTO kv(bucket, key, value, revision) VALUES (?,?,?,?) "
    "ON CONFLICT(bucket, key) DO UPDATE SET value = excluded.value, revision = excluded.revision"
)


def _next_revision(conn: sqlite3.Connection) -> int:
    revision: int = conn.execute(
        "UPDATE kv_seq SET revision = revision + 1 WHERE id = 1 RETURNING revision"
    ).fetchone()[0]
    return revision
