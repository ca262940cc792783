"""The audit trail: one entry per command (chat, bot, API, CLI) with who, where, what and the outcome.

Bucket ``audit``, key = the command event's id. An entry is written by the command's handler
*before* its outbox commits, and a redelivery writes the same entry again (same key, same
fields, the first ``at`` kept): a replay never makes a second entry, and a command is never
executed without one. Entries are never deleted by Upshift.

An entry (plain JSON):

```
{"id": event id, "at": ISO time (domain clock), "platform": "slack" | "mattermost" | "bot" | "api" | "cli",
 "actor": "slack:T0SRE/U024BE7LH" (the identity the role was taken from), "via": edge or token,
 "team", "user", "user_name", "channel", "trigger_id", "action_id",   # the platform's own ids
 "command": "approve", "text": the text as typed, "run": run id | null, "scope": scope | null,
 "outcome": "ok" | "refused" | "error", "reply": what the user was told}
```
"""

from __future__ import annotations

import time
from typing import Any

from shared.store.base import KV, Value
from shared.store.ledger import mutate

__all__ = ["AUDIT", "Audit"]

AUDIT = "audit"


class Audit:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def record(self, entry: Value) -> Value:
        """Write ``entry`` (its ``id`` is the key). Idempotent: a rewrite keeps the first ``at``."""

        def change(cur: Value | None) -> Value:
            if cur is None:  # "recorded": orders entries made at one domain instant (a fake clock's)
                return {**entry, "recorded": time.time_ns()}
            return {**entry, "at": cur.get("at", entry.get("at")), "recorded": cur.get("recorded", 0)}

        return await mutate(self.kv, AUDIT, str(entry["id"]), change, outbox=True)

    async def get(self, entry_id: str) -> Value | None:
        e = await self.kv.get(AUDIT, entry_id)
        return None if e is None else e.value

    async def entries(self, *, run: str | None = None, limit: int | None = None) -> list[Value]:
        """Entries oldest first (by ``at``), only those of ``run`` when given, the last ``limit``."""
        out: list[dict[str, Any]] = []
        for key in await self.kv.keys(AUDIT):
            e = await self.kv.get(AUDIT, key)
            if e is not None and (run is None or e.value.get("run") == run):
                out.append(e.value)
        out.sort(key=lambda v: (str(v.get("at", "")), int(v.get("recorded", 0)), str(v.get("id", ""))))
        return out if limit is None else out[-limit:]
