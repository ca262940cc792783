"""The embedded bus: one SQLite file in WAL mode, shared by every process on the machine.

Tables (prefix ``bus_``):

* ``bus_events`` — every event ever published, keyed by id: a second publish of an id is
  dropped (dedupe, forever).
* ``bus_consumers`` — durable consumers (name, type, attribute filter). A publish fans out
  one delivery per matching consumer *in the same transaction*, so a consumer registered in
  another process still gets the event.
* ``bus_deliveries`` — one row per (consumer, event) not yet acknowledged. ``visible_at`` is the
  single clock column: publish time + delay, then lease expiry while a handler holds it, then
  the backoff instant after a failure. A crashed consumer's rows simply become visible again.
* ``bus_dead`` — deliveries that exhausted their attempts.

The outbox: a handler's emitted events and the deletion of its delivery row commit in one
transaction, so either both happen or neither does. Writes the handler *defers* (:func:`deferred`:
the ledger's, when the store lives in this same file) are applied in that transaction too, so
on SQLite a run's state and the events that announce it commit together. The delete is guarded by the attempt
number the handler was given: if its lease expired and another consumer took the row, that
handler's part writes nothing (the other consumer's run wins). Finished handlers are
group-committed: one transaction acks all of them, with multi-row statements, not one per event.

Durability: WAL with ``synchronous=NORMAL`` survives a killed process (the WAL is in the OS
page cache); only a power loss can drop the last commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from events.codec import BadEvent, from_json, to_json
from events.envelope import Event
from shared import crashpoints
from shared.bus.base import (
    DeadLetter,
    Delayed,
    Emitted,
    Subscription,
    backoff_delay,
    dead_letter_event,
    matches,
)
from shared.errors import RetryLater
from shared.log import bind_correlation, get_logger
from shared.runtime import metrics

__all__ = ["OutboxWrite", "SqliteBus", "connect", "deferred", "transaction"]

#: A write applied inside the outbox transaction, on the bus's connection.
OutboxWrite = Callable[[sqlite3.Connection], None]
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_events (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL, published_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS bus_consumers (
    name TEXT PRIMARY KEY, type TEXT NOT NULL, filter TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bus_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, consumer TEXT NOT NULL, event_id TEXT NOT NULL,
    visible_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
CREATE INDEX IF NOT EXISTS bus_deliveries_due ON bus_deliveries(consumer, visible_at);
CREATE TABLE IF NOT EXISTS bus_dead (
    consumer TEXT NOT NULL, event_id TEXT NOT NULL, attempts INTEGER NOT NULL,
    error TEXT NOT NULL, dead_at REAL NOT NULL, PRIMARY KEY (consumer, event_id));
"""

#: Rows per multi-row statement: far below SQLite's bound on parameters (32766 since 3.32).
_ROWS_PER_STATEMENT = 500

#: Longest idle sleep: other processes' publishes cannot wake us, so we look this often.
_IDLE_POLL = 0.05

log = get_logger("upshift.bus.sqlite")


def connect(path: str) -> sqlite3.Connection:
    """Open ``path`` (creating folders) in WAL mode, autocommit, with a generous busy timeout."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


@dataclass(slots=True)
class _Delivery:
    """A claimed delivery, in ``_inflight`` from its claim until its outcome commits; the outcome
    (``emitted`` or ``failure``) is set when the handler is over."""

    seq: int
    sub: Subscription
    attempts: int
    #: The database file of the bus that claimed it (:func:`deferred` compares it).
    path: str
    event: Event[Any] | None = None
    #: Why the event could not be decoded (then there is no event, and the handler is not run).
    error: str | None = None
    #: Writes the handler deferred to its outbox transaction (applied on ack and on failure alike);
    #: made on the first one (most handlers defer none).
    writes: list[OutboxWrite] | None = None
    #: The task running the handler.
    task: asyncio.Task[None] | None = None
    emitted: Sequence[Emitted] | None = None
    failure: BaseException | None = None


#: A claimed delivery, before it is decoded: (subscription, seq, event id, attempt, stored body).
_Claimed = tuple[Subscription, int, str, int, str | None]


#: The delivery being handled in this task.
_HANDLING: ContextVar[_Delivery | None] = ContextVar("upshift_sqlite_handling", default=None)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on an autocommit connection (see :func:`connect`), rolled
    back if the body raises: the writer lock is taken up front, so a read-modify-write inside
    sees no other writer's change."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def deferred(path: str) -> list[OutboxWrite] | None:
    """The list to append writes to, when the running handler was delivered by a SQLite bus on
    ``path`` (its writes then commit with its outbox); None elsewhere (write at once)."""
    current = _HANDLING.get()
    if current is None or current.path != os.path.abspath(path):
        return None
    if current.writes is None:
        current.writes = []
    return current.writes


class SqliteBus:
    """The Bus protocol on one SQLite file. See the module docstring for the design."""

    def __init__(self, path: str, *, lease: float = 30.0, now: Callable[[], float] = time.time) -> None:
        self.path = path
        self._abspath = os.path.abspath(path)
        self.url = f"sqlite:///{path}"
        self.lease = lease
        self._now = now
        self._conn: sqlite3.Connection | None = None
        self._subs: dict[str, Subscription] = {}
        self._inflight: dict[int, _Delivery] = {}
        self._per_sub: dict[str, int] = {}
        self._done: list[_Delivery] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._stopped = asyncio.Event()
        self._filters: dict[str, dict[str, str]] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._conn is None:
            self._conn = connect(self.path)
            self._conn.executescript(_SCHEMA)
            for sub in self._subs.values():
                self._register(sub)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        running = [d.task for d in self._inflight.values() if d.task is not None]
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        if self._conn is not None:
            self._commit_outcomes()
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteBus used before start()")
        return self._conn

    # -- publishing ----------------------------------------------------------------------------

    async def publish(self, event: Event[Any], *, delay: float = 0.0) -> bool:
        with self._tx() as conn:
            fresh = self._insert(conn, event, delay)
        if fresh:
            self._wake.set()
        return fresh

    def _insert(self, conn: sqlite3.Connection, event: Event[Any], delay: float) -> bool:
        return bool(self._insert_many(conn, [(event, delay)]))

    def _insert_many(self, conn: sqlite3.Connection, events: Sequence[tuple[Event[Any], float]]) -> set[str]:
        """Insert ``events`` (each with its delay) and fan each *new* one out to its consumers, in
        the caller's transaction; the ids that were new (an id already stored is dropped: dedupe).
        The consumers are read once here: inside the write transaction no other process can
        register one, so one read serves every event of the group."""
        if not events:
            return set()
        now = self._now()
        fresh: set[str] = set()
        for chunk in _chunks(events, _ROWS_PER_STATEMENT):
            cur = conn.execute(
                "INSERT OR IGNORE INTO bus_events(id, type, body, published_at) VALUES "
                + ",".join(["(?,?,?,?)"] * len(chunk))
                + " RETURNING id",
                [v for event, _ in chunk for v in (event.id, event.type, to_json(event), now)],
            )
            fresh.update(row[0] for row in cur.fetchall())
        if not fresh:
            return fresh
        types = sorted({event.type for event, _ in events})
        consumers: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for name, type_, flt in conn.execute(
            f"SELECT name, type, filter FROM bus_consumers WHERE type IN ({','.join('?' * len(types))})",
            types,
        ).fetchall():
            consumers.setdefault(type_, []).append((name, self._filter(flt)))
        targets: list[tuple[str, str, float]] = []
        fanned: set[str] = set()
        for event, delay in events:
            # Fan out only the first event of a new id: a second one in the group was dropped.
            if event.id not in fresh or event.id in fanned:
                continue
            fanned.add(event.id)
            visible = now + max(0.0, delay)
            targets.extend(
                (name, event.id, visible)
                for name, where in consumers.get(event.type, ())
                if matches(event, event.type, where)
            )
        if targets:
            conn.executemany(
                "INSERT INTO bus_deliveries(consumer, event_id, visible_at) VALUES (?,?,?)", targets
            )
        return fresh

    def _filter(self, text: str) -> dict[str, str]:
        """A consumer's stored filter, parsed once per distinct text."""
        where = self._filters.get(text)
        if where is None:
            where = self._filters[text] = json.loads(text)
        return where

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self.conn)

    # -- consuming -----------------------------------------------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        if sub.handler is None:
            raise ValueError(f"subscription {sub.name!r} has no handler")
        self._subs[sub.name] = sub
        self._per_sub.setdefault(sub.name, 0)
        if self._conn is not None:
            self._register(sub)

    def _register(self, sub: Subscription) -> None:
        self.conn.execute(
            "INSERT INTO bus_consumers(name, type, filter) VALUES (?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET type=excluded.type, filter=excluded.filter",
            (sub.name, sub.type, json.dumps(dict(sub.where), sort_keys=True)),
        )

    async def run(self) -> None:
        await self.start()
        self._closing = False
        renew_every = self.lease / 3
        last_renew = self._now()
        try:
            while not self._closing:
                self._wake.clear()
                try:
                    claimed = self._cycle()
                    # started at once: a lease renewal failing below must not strand what committed
                    self._start_all(claimed)
                    if self._now() - last_renew >= renew_every:
                        self._renew_leases()
                        last_renew = self._now()
                except sqlite3.OperationalError as exc:
                    # e.g. "database is locked" past busy_timeout with other processes on the file:
                    # nothing is lost (uncommitted work comes back when its lease ends); keep consuming.
                    log.warning("sqlite busy; retrying", error=str(exc))
                    await asyncio.sleep(0.1)
                    continue
                if claimed or self._done:
                    await asyncio.sleep(0)  # let handlers run; then loop to commit/claim again
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._idle_wait())
        finally:
            self._stopped.set()

    def _idle_wait(self) -> float:
        names = [n for n, s in self._subs.items() if self._per_sub[n] < s.concurrency]
        if not names:
            return _IDLE_POLL
        marks = ",".join("?" * len(names))
        row = self.conn.execute(
            f"SELECT MIN(visible_at) FROM bus_deliveries WHERE consumer IN ({marks})", names
        ).fetchone()
        due: float | None = row[0]
        if due is None:
            return _IDLE_POLL
        return min(_IDLE_POLL, max(0.0, due - self._now()))

    def _cycle(self, *, claim: bool = True) -> list[_Claimed]:
        """One write transaction: group-commit the finished handlers (each one's outputs and ack,
        or its retry, atomically), then, with ``claim``, lease what is due for each subscription's
        free slots. One commit for both; the claimed handlers are started by the caller after it
        (a rolled-back claim starts nothing: its rows were never leased)."""
        done, self._done = self._done, []
        if not done and not claim:
            return []
        # Committed or not, these handlers are over: if the commit fails their rows are still
        # leased and come back when the lease ends (outputs and ack roll back together).
        for d in done:
            del self._inflight[d.seq]
            self._per_sub[d.sub.name] -= 1
        if done:
            crashpoints.hit("outbox.before_commit")
        claimed: list[_Claimed] = []
        with self._tx() as conn:
            if done:
                self._settle(conn, done)
            if claim:
                for name, sub in self._subs.items():
                    free = sub.concurrency - self._per_sub[name]
                    if free > 0:
                        claimed.extend(self._claim(conn, sub, free))
        if done:
            crashpoints.hit("outbox.published")
        return claimed

    def _commit_outcomes(self) -> None:
        """Group-commit finished handlers, claiming nothing (closing)."""
        self._cycle(claim=False)

    def _claim(self, conn: sqlite3.Connection, sub: Subscription, limit: int) -> list[_Claimed]:
        """Lease up to ``limit`` of ``sub``'s due deliveries (in ``conn``'s transaction): each
        with its attempt and the event's stored body (None if it is gone)."""
        now = self._now()
        rows = conn.execute(
            "UPDATE bus_deliveries SET visible_at = ?, attempts = attempts + 1 WHERE seq IN ("
            " SELECT seq FROM bus_deliveries WHERE consumer = ? AND visible_at <= ?"
            " ORDER BY visible_at LIMIT ?) RETURNING seq, event_id, attempts",
            (now + self.lease, sub.name, now, limit),
        ).fetchall()
        if not rows:
            return []
        bodies = dict(
            conn.execute(
                f"SELECT id, body FROM bus_events WHERE id IN ({','.join('?' * len(rows))})",
                [r[1] for r in rows],
            ).fetchall()
        )
        return [(sub, seq, event_id, attempts, bodies.get(event_id)) for seq, event_id, attempts in rows]

    def _start_all(self, claimed: Sequence[_Claimed]) -> None:
        """Decode each claimed event (outside the write transaction) and start its handler."""
        loop = asyncio.get_running_loop()
        path = self._abspath
        for sub, seq, event_id, attempts, body in claimed:
            d = _Delivery(seq, sub, attempts, path)
            if body is None:
                d.error = f"undecodable event {event_id}: {event_id!r}"
            else:
                try:
                    d.event = from_json(body)
                except BadEvent as exc:
                    d.error = f"undecodable event {event_id}: {exc}"
            self._inflight[seq] = d
            # counted once the claim committed: a rolled-back cycle (a locked database) must not
            # take slots its rows never got
            self._per_sub[sub.name] += 1
            # Its task is found through _inflight (until its outcome commits), with no done
            # callback to schedule per delivery.
            d.task = loop.create_task(self._handle(d))

    async def _handle(self, d: _Delivery) -> None:
        _HANDLING.set(d)  # this task's own context: no reset needed
        if d.event is None:
            d.failure = ValueError(d.error)
        else:
            # The task's context is its own copy, so binding the correlation fields here needs no
            # unbinding (what bind_event does, minus the undo: half its cost per delivery).
            bind_correlation(d.event)
            try:
                d.emitted = await d.sub.handler(d.event)  # type: ignore[misc]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any handler failure means "redeliver later"
                d.failure = exc
        self._done.append(d)
        self._wake.set()

    def _settle(self, conn: sqlite3.Connection, done: Sequence[_Delivery]) -> None:
        """The outcomes of ``done`` in ``conn``'s transaction: the returned ones acked with their
        outputs, each failure retried or dead-lettered."""
        self._ack_all(conn, [d for d in done if d.failure is None])
        for d in done:
            if d.failure is None:
                continue
            # A savepoint per failure, so a lost lease undoes only that handler's writes.
            conn.execute("SAVEPOINT outcome")
            try:
                self._fail(conn, d, d.failure)
            except _LeaseLost:
                conn.execute("ROLLBACK TO outcome")
                self._lease_lost(d)
            finally:
                conn.execute("RELEASE outcome")

    def _ack_all(self, conn: sqlite3.Connection, acked: Sequence[_Delivery]) -> None:
        """Ack the handlers that returned, with what they deferred and emitted, in ``conn``'s
        transaction. The delete of each delivery row is guarded by the attempt it was handed:
        a row gone (its lease ended, another consumer took it) means that handler wrote and
        emits nothing here — the other consumer's run wins — as a rollback of its part would."""
        held = self._release(conn, acked)
        emitted: list[tuple[Event[Any], float]] = []
        for d in acked:
            if d.seq not in held:
                self._lease_lost(d)
                continue
            for write in d.writes or ():
                write(conn)
            for item in d.emitted or ():
                if isinstance(item, Delayed):
                    emitted.append((item.event, item.delay))
                else:
                    emitted.append((item, 0.0))
        self._insert_many(conn, emitted)

    @staticmethod
    def _release(conn: sqlite3.Connection, deliveries: Sequence[_Delivery]) -> set[int]:
        """Delete the rows of ``deliveries`` still at the attempt each was handed; their seqs."""
        by_attempt: dict[int, list[int]] = {}
        for d in deliveries:
            by_attempt.setdefault(d.attempts, []).append(d.seq)
        held: set[int] = set()
        for attempts, seqs in by_attempt.items():  # nearly always one: every row at attempt 1
            for chunk in _chunks(seqs, _ROWS_PER_STATEMENT):
                cur = conn.execute(
                    f"DELETE FROM bus_deliveries WHERE attempts = ? AND seq IN ({','.join('?' * len(chunk))})"
                    " RETURNING seq",
                    [attempts, *chunk],
                )
                held.update(row[0] for row in cur.fetchall())
        return held

    @staticmethod
    def _lease_lost(d: _Delivery) -> None:
        log.warning("lease lost; another consumer owns the delivery", consumer=d.sub.name, seq=d.seq)

    def _fail(self, conn: sqlite3.Connection, d: _Delivery, error: BaseException) -> None:
        # What the handler wrote before it raised stands, as it would had it been written at once.
        for write in d.writes or ():
            write(conn)
        text = f"{type(error).__name__}: {error}"[:2000]
        poison = d.event is None
        if poison or d.attempts >= d.sub.max_attempts:
            cur = conn.execute(
                "DELETE FROM bus_deliveries WHERE seq = ? AND attempts = ?", (d.seq, d.attempts)
            )
            if cur.rowcount == 0:
                raise _LeaseLost
            conn.execute(
                "INSERT OR REPLACE INTO bus_dead(consumer, event_id, attempts, error, dead_at) VALUES (?,?,?,?,?)",
                (d.sub.name, self._event_id(conn, d), d.attempts, text, self._now()),
            )
            notice = None if d.event is None else dead_letter_event(d.sub.name, d.event, d.attempts, text)
            if notice is not None:  # with the dead letter, in its transaction: its run is ended
                self._insert(conn, notice, 0.0)
            log.error("dead-lettered", consumer=d.sub.name, attempts=d.attempts, error=text)
            metrics.dead_letter(d.sub.name)
            return
        delay = (
            error.delay
            if isinstance(error, RetryLater)
            else backoff_delay(d.attempts, d.sub.backoff_base, d.sub.max_backoff)
        )
        cur = conn.execute(
            "UPDATE bus_deliveries SET visible_at = ?, last_error = ? WHERE seq = ? AND attempts = ?",
            (self._now() + delay, text, d.seq, d.attempts),
        )
        if cur.rowcount == 0:
            raise _LeaseLost
        metrics.bus_retry(d.sub.name)
        log.warning(
            "handler failed; will retry",
            consumer=d.sub.name,
            attempt=d.attempts,
            retry_in=round(delay, 3),
            error=text,
        )

    @staticmethod
    def _event_id(conn: sqlite3.Connection, d: _Delivery) -> str:
        if d.event is not None:
            return d.event.id
        event_id: str = conn.execute(
            "SELECT event_id FROM bus_deliveries WHERE seq = ?", (d.seq,)
        ).fetchone()[0]
        return event_id

    def _renew_leases(self) -> None:
        """Keep the rows of handlers still running invisible to other consumers."""
        if not self._inflight:
            return
        until = self._now() + self.lease
        self.conn.executemany(
            "UPDATE bus_deliveries SET visible_at = ? WHERE seq = ? AND attempts = ?",
            [(until, d.seq, d.attempts) for d in self._inflight.values()],
        )

    # -- inspection ----------------------------------------------------------------------------

    async def dead_letters(self) -> list[DeadLetter]:
        rows = self.conn.execute(
            "SELECT d.consumer, e.body, d.attempts, d.error FROM bus_dead d "
            "JOIN bus_events e ON e.id = d.event_id ORDER BY d.dead_at"
        ).fetchall()
        return [DeadLetter(consumer=c, event=from_json(b), attempts=a, error=err) for c, b, a, err in rows]

    async def pending(self) -> int:
        """Deliveries not yet acknowledged (all consumers): 0 means the bus is drained."""
        count: int = self.conn.execute("SELECT COUNT(*) FROM bus_deliveries").fetchone()[0]
        return count


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _LeaseLost(Exception):
    """Our lease expired and another consumer took the delivery: roll back, let it win."""
