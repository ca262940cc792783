"""The KV protocol on JetStream KV: one bucket per logical bucket, compare-and-set by revision.

* Bucket ``b`` lives in the JetStream KV bucket ``<namespace>_<b>`` (created on first use, file
  storage, history 1, the URL's ``replicas``); keys are stored escaped with :func:`escape_key`,
  values as JSON.
* The revision is the bucket stream's sequence of the last write, so it grows on every write.
* ``create``/``update``/``delete(revision=…)`` use the server's expected-last-subject-sequence
  check: of two racing writers exactly one wins, the other gets :class:`Conflict`.
* Deleted keys leave a delete marker; they read as absent, are not listed and can be created again.
"""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from shared.bus.jetstream import check_namespace, connect, last_headers, name
from shared.errors import Conflict
from shared.store.base import Entry, Value, escape_key, unescape_key

__all__ = ["NatsKV"]

# JSStreamWrongLastSequenceErrF / ...ConstantErr: the expected-last-sequence check failed.
_WRONG_LAST_SEQ = (10071, 10164)


def _encode(value: Value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class NatsKV:
    """JetStream KV implementation of :class:`shared.store.base.KV`."""

    def __init__(self, url: str, *, namespace: str = "upshift", replicas: int = 1) -> None:
        self.url = url
        #: of every bucket this store creates (3 on a 3-node cluster: a node may die)
        self.replicas = replicas
        self.namespace = check_namespace(namespace)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._buckets: dict[str, KeyValue] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                self._nc = await connect(self.url)
                self._js = self._nc.jetstream()
                self._buckets.clear()

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        self._buckets.clear()
        if nc is not None and not nc.is_closed:
            await nc.drain()

    async def _bucket(self, bucket: str) -> KeyValue:
        kv = self._buckets.get(bucket)
        if kv is not None:
            return kv
        if self._nc is None:
            await self.start()
        assert self._js is not None
        full = name(f"{self.namespace}_{bucket}")
        try:
            kv = await self._js.key_value(full)
        except BucketNotFoundError:
            # Creating an existing bucket with the same config is a no-op on the server, so two
            # processes racing here both succeed.
            kv = await self._js.create_key_value(
                KeyValueConfig(bucket=full, history=1, storage=StorageType.FILE, replicas=self.replicas)
            )
        self._buckets[bucket] = kv
        return kv

    async def get(self, bucket: str, key: str) -> Entry | None:
        kv = await self._bucket(bucket)
        try:
            entry = await kv.get(escape_key(key))
        except KeyNotFoundError:  # absent, deleted or purged
            return None
        if entry.revision is None:  # nats-py types it Optional (watch entries); a get always has one
            raise RuntimeError(f"{bucket}/{key}: JetStream returned an entry without a revision")
        return Entry(key=key, value=json.loads(entry.value or b"null"), revision=entry.revision)

    async def create(self, bucket: str, key: str, value: Value) -> int:
        kv = await self._bucket(bucket)
        try:
            return await kv.create(escape_key(key), _encode(value))
        except KeyWrongLastSequenceError:
            raise Conflict(f"{bucket}/{key} already exists") from None
        except APIError as err:
            if err.err_code in _WRONG_LAST_SEQ:
                raise Conflict(f"{bucket}/{key} already exists") from None
            raise

    async def update(self, bucket: str, key: str, value: Value, revision: int) -> int:
        kv = await self._bucket(bucket)
        if revision <= 0:
            # nats-py treats last=0 as "must not exist", which is create, not update.
            raise Conflict(f"{bucket}/{key}: revision {revision} is not a revision")
        try:
            return await kv.update(escape_key(key), _encode(value), last=revision)
        except KeyWrongLastSequenceError:
            raise Conflict(f"{bucket}/{key} is no longer at revision {revision}") from None

    async def put(self, bucket: str, key: str, value: Value) -> int:
        kv = await self._bucket(bucket)
        return await kv.put(escape_key(key), _encode(value))

    async def delete(self, bucket: str, key: str, revision: int | None = None) -> None:
        kv = await self._bucket(bucket)
        if revision is None:
            if await self.get(bucket, key) is not None:  # no marker for keys that are not there
                await kv.delete(escape_key(key))
            return
        try:
            await kv.delete(escape_key(key), last=revision)
        except APIError as err:
            if err.err_code not in _WRONG_LAST_SEQ:
                raise
            if await self.get(bucket, key) is not None:
                raise Conflict(f"{bucket}/{key} is no longer at revision {revision}") from None
            # Absent (never written, or already deleted): nothing to remove.

    async def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Not ``KeyValue.keys()``, which can stop early and return a partial list under concurrent
        writes (nats.py #842): the server's own list of the bucket's subjects, then the last
        message of each (headers only) to leave out deleted and purged keys."""
        await self._bucket(bucket)
        assert self._js is not None
        full = name(f"{self.namespace}_{bucket}")
        stream, head = f"KV_{full}", f"$KV.{full}."
        info = await self._js.stream_info(stream, subjects_filter=f"{head}>")
        subjects = set((info.state.subjects or {}).keys())
        if not subjects:
            return []
        ops = await last_headers(self._js, stream, f"{head}>", subjects)
        gone = {"DEL", "PURGE"}
        live = [s[len(head) :] for s in subjects if ops.get(s) not in gone]
        return sorted(k for k in map(unescape_key, live) if k.startswith(prefix))
