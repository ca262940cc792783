"""A cheap mark of what the dashboard's pages show, for the live updates (:mod:`shared.dashboard.sse`).

:func:`marks_of` gives the store's :class:`Marks`: :meth:`Marks.mark` is a value that changes
whenever a document of :data:`WATCHED` (runs, wave and control documents, versions, audit
entries) is written, and otherwise stays the same. It costs a fixed number of store calls
however long the history — the watcher asks once a second while a page listens:

* SQLite (:class:`~shared.store.sqlite.SqliteKV`): the file's revision counter (the one row of
  ``kv_seq``, which every write of every bucket moves): one query. Only when it moved, one more
  asks whether a row of a watched bucket has a revision above the last one seen — a write
  elsewhere (claims, durations, the clock) changes no page, so it is no change. Deletes do not
  move the counter; Upshift deletes nothing in these buckets (the audit keeps every entry).
* NATS (:class:`~shared.store.nats.NatsKV`): each watched bucket's stream's last sequence
  (``STREAM.INFO`` without subjects: the server's counter, no listing), which writes, deletes and
  purges all move: one request per bucket. Over a connection of its own to the store's server,
  opened on first use and closed by :meth:`Marks.close`.
* another KV: :func:`fingerprint`, every key's revision (all a store without a counter offers).

A mark says *that* something changed, not what: the pages re-fetch what they show.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from typing import Protocol

from nats.aio.client import Client
from nats.js.errors import NotFoundError

from shared.bus.jetstream import connect, name
from shared.domain.waves import BUCKET as WAVES
from shared.engine.control import CONTROL
from shared.store.audit import AUDIT
from shared.store.base import KV
from shared.store.ledger import RUNS, VERSIONS
from shared.store.nats import NatsKV
from shared.store.sqlite import SqliteKV

__all__ = ["WATCHED", "Marks", "fingerprint", "marks_of"]

#: The buckets the pages show.
WATCHED = (RUNS, WAVES, CONTROL, VERSIONS, AUDIT)


class Marks(Protocol):
    async def mark(self) -> Hashable:
        """A value that differs from the last one iff a watched document was written since."""

    async def close(self) -> None:
        """Let go of what :meth:`mark` holds (a connection); a later mark opens it again."""


def marks_of(kv: KV) -> Marks:
    """The cheapest :class:`Marks` of ``kv`` (see the module docstring)."""
    if isinstance(kv, SqliteKV):
        return _SqliteMarks(kv)
    if isinstance(kv, NatsKV):
        return _NatsMarks(kv)
    return _Fingerprints(kv)


_SEQ = "SELECT revision FROM kv_seq WHERE id = 1"
_WRITTEN_SINCE = (
    f"SELECT EXISTS (SELECT 1 FROM kv WHERE bucket IN ({', '.join('?' * len(WATCHED))}) AND revision > ?)"
)


class _SqliteMarks:
    def __init__(self, kv: SqliteKV) -> None:
        self.kv = kv
        self._seen: int | None = None  # the counter at the last look
        self._mark = 0  # the counter when a watched row was last seen written

    async def mark(self) -> int:
        conn = self.kv.conn
        seq = int(conn.execute(_SEQ).fetchone()[0])
        if self._seen is None:
            self._mark = seq
        elif seq != self._seen and conn.execute(_WRITTEN_SINCE, (*WATCHED, self._seen)).fetchone()[0]:
            # (a write committed between the two queries is seen again at the next look: at
            # worst one change announced twice, never one missed)
            self._mark = seq
        self._seen = seq
        return self._mark

    async def close(self) -> None:
        self._seen = None


class _NatsMarks:
    def __init__(self, kv: NatsKV) -> None:
        self.kv = kv
        # the streams NatsKV keeps the buckets in (shared.store.nats: KV_<namespace>_<bucket>)
        self.streams = [f"KV_{name(f'{kv.namespace}_{bucket}')}" for bucket in WATCHED]
        self._nc: Client | None = None

    async def mark(self) -> tuple[int, ...]:
        if self._nc is None or self._nc.is_closed:
            self._nc = await connect(self.kv.url)
        js = self._nc.jetstream()
        marks = []
        for stream in self.streams:
            try:
                marks.append((await js.stream_info(stream)).state.last_seq)
            except NotFoundError:  # the bucket is made on first use: nothing written yet
                marks.append(0)
        return tuple(marks)

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            await nc.close()


class _Fingerprints:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def mark(self) -> str:
        return await fingerprint(self.kv)

    async def close(self) -> None:
        pass


async def fingerprint(kv: KV) -> str:
    """A digest that changes whenever a run, a wave or control document, a version or the
    number of audit entries does (revisions only: no document is decoded twice). One read per
    key: the fallback for a KV without a revision counter."""
    digest = hashlib.sha256()
    for bucket in (RUNS, WAVES, CONTROL, VERSIONS):
        for key in await kv.keys(bucket):
            entry = await kv.get(bucket, key)
            digest.update(f"{bucket}\0{key}\0{entry.revision if entry else -1}\n".encode())
    digest.update(f"{AUDIT}\0{len(await kv.keys(AUDIT))}".encode())
    return digest.hexdigest()
