"""Freezes: spans of time in which no new run starts in a scope.

Two sources, one rule: a freeze typed in chat (``freeze <scope> for <duration> <reason>``, kept in
the store until it expires or ``unfreeze``) and the fleet file's ``freezes:`` (blackout dates or
recurring spans):

```yaml
freezes:
  - {name: black-friday, scope: all, start: 2026-11-27T00:00:00Z, end: 2026-11-30T23:59:59Z,
     reason: peak traffic}
  - {name: quarter-end, scope: kind:starrocks, rrule: "FREQ=MONTHLY;BYMONTH=3,6,9,12;BYMONTHDAY=-1",
     duration: 24h, timezone: Asia/Seoul, reason: end-of-quarter reporting}
```

A freeze blocks ``start_upgrades`` from releasing a run in scope; runs already started go on.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.durations import Duration

__all__ = ["FreezeRule"]


class FreezeRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,62}$")
    #: a scope as the chat grammar writes it: a target, kind:<kind>, window:<name>, wave:<n>, all
    scope: str = "all"
    reason: str = Field(min_length=1, max_length=500)
    start: datetime | None = None
    end: datetime | None = None
    rrule: str | None = None
    duration: Duration | None = None
    timezone: str = "UTC"
