"""Approvals: which runs wait for people before they start, and whether they have what they need.

The rule comes from the fleet file, on a policy (``policies[].approval``) or a wave
(``waves.approval: {0: {...}}``); a policy's wins over its wave's:

```yaml
waves:
  bake: 30m
  approval:
    0: {required: true, approvers: [sre-leads], min_approvals: 1, expires: 12h}
```

* ``approvers``: names of ``rbac:`` grants whose members may approve (empty: anyone whose role is
  ``approver`` or above for the target);
* ``min_approvals``: distinct people needed;
* ``expires``: an approval request lapses this long after it was posted, or when the window
  occurrence it was posted for closes, whichever comes first (then a new one is posted when
  the next occurrence opens; a target without a window has no opening: an approval given after
  its request lapsed counts for a new one, 24 h unless ``expires`` says otherwise);
* ``prevent_self_approval``: whoever asked for the run (``upgrade`` from chat) may not approve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.durations import Duration

__all__ = [
    "DEFAULT_EXPIRY",
    "Approval",
    "Grant",
    "approved",
    "approvers_of",
    "bind",
    "expired",
    "grant",
    "new_approval",
    "waiting_reason",
]


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool = True
    approvers: list[str] = []
    min_approvals: int = Field(default=1, ge=1, le=10)
    expires: Duration | None = None
    prevent_self_approval: bool = True


# --- the approval state of a run's waves entry (pure) ----------------------------------------
#
# A run that needs approval carries, in its window's waves document entry (shared.domain.waves):
#
#   "approval": {"need": 1, "approvers": ["sre-leads"], "expires_s": 43200.0 | None,
#                "prevent_self": true, "requested_by": identity | None,
#                "occurrence": opens_at ISO | None, "expires_at": ISO,
#                "granted": [{"who": identity, "at": ISO, "event": command event id}]}
#
# It is bound to one window occurrence: when that occurrence closes (or ``expires`` after the
# request), what was granted lapses, and the window's next opening binds it afresh (new request).

#: How long a request of a target without a window stays valid when its rule sets no ``expires``.
DEFAULT_EXPIRY = timedelta(hours=24)


def new_approval(
    rule: Approval,
    *,
    now: datetime,
    opens_at: datetime | None,
    closes_at: datetime | None,
    requested_by: str | None = None,
) -> dict[str, Any]:
    """The approval state of a run planned at ``now`` for the occurrence (opens_at, closes_at)."""
    expires_s = rule.expires.total_seconds() if rule.expires is not None else None
    state: dict[str, Any] = {
        "need": rule.min_approvals,
        "approvers": list(rule.approvers),
        "expires_s": expires_s,
        "prevent_self": rule.prevent_self_approval,
        "requested_by": requested_by,
        "granted": [],
    }
    return bind(state, now=now, opens_at=opens_at, closes_at=closes_at)


def bind(
    state: dict[str, Any], *, now: datetime, opens_at: datetime | None, closes_at: datetime | None
) -> dict[str, Any]:
    """``state`` bound to a (new) occurrence: nothing granted yet, expiring when it closes or
    ``expires`` after ``now``, whichever is first."""
    limit = now + (
        timedelta(seconds=state["expires_s"]) if state.get("expires_s") is not None else DEFAULT_EXPIRY
    )
    if closes_at is not None and (state.get("expires_s") is None or closes_at < limit):
        limit = closes_at
    return {
        **state,
        "occurrence": None if opens_at is None else opens_at.isoformat(),
        "expires_at": limit.isoformat(),
        "granted": [],
    }


def waiting_reason(state: dict[str, Any] | None, now: datetime) -> str | None:
    """Why a run with this approval state may not start at ``now``; None when it may."""
    if state is None:
        return None
    granted, need = len(state.get("granted", [])), int(state.get("need", 1))
    if now >= datetime.fromisoformat(state["expires_at"]):
        return f"its approval request expired at {state['expires_at']} ({granted} of {need} given)"
    if granted < need:
        return f"awaiting approval ({granted} of {need})"
    return None


def expired(state: dict[str, Any] | None, now: datetime) -> bool:
    return state is not None and now >= datetime.fromisoformat(state["expires_at"])


def approved(state: dict[str, Any] | None) -> bool:
    return state is not None and len(state.get("granted", [])) >= int(state.get("need", 1))


def approvers_of(state: dict[str, Any] | None) -> list[str]:
    return [] if state is None else [g["who"] for g in state.get("granted", [])]


@dataclass(frozen=True, slots=True)
class Grant:
    """What an approval did: ``code`` is ``approved`` (the last one needed), ``counted`` (more are
    needed), or a refusal: ``already`` (this person approved already), ``expired``, ``superseded``
    (the button was for another version), ``stale`` (for another window occurrence), ``self``
    (the person who asked for the run). ``replay``: this very command was counted before."""

    code: str
    message: str
    state: dict[str, Any] | None = None
    replay: bool = False

    @property
    def ok(self) -> bool:
        return self.code in ("approved", "counted")


def grant(
    state: dict[str, Any],
    *,
    who: str,
    event_id: str,
    now: datetime,
    to_version: str,
    binding_version: str | None = None,
    binding_occurrence: str | None = None,
    bound: bool = False,
) -> Grant:
    """Count ``who``'s approval (command ``event_id``) in ``state``. ``bound``: the approval came
    from a button, whose binding (``binding_version``, ``binding_occurrence``) must be this
    request's. A redelivered command finds its own grant and gets the same answer again."""
    granted = list(state.get("granted", []))
    need = int(state.get("need", 1))
    mine = next((g for g in granted if g.get("event") == event_id), None)
    if mine is not None:
        code = "approved" if len(granted) >= need else "counted"
        return Grant(code, _counted(granted, need), state, replay=True)
    if bound and binding_version is not None and binding_version != to_version:
        return Grant(
            "superseded", f"this request was for {binding_version}; the run now goes to {to_version}"
        )
    if bound and binding_occurrence != state.get("occurrence"):
        return Grant(
            "stale",
            "this button was for an earlier window opening; a new approval request was posted"
            if state.get("occurrence")
            else "this button is for another request of the run",
        )
    if now >= datetime.fromisoformat(state["expires_at"]):
        if state.get("occurrence") is not None:
            return Grant("expired", f"the approval request expired at {state['expires_at']}")
        # a run without a window has no opening to bind a new request to: an approval given now
        # starts a new request (what was granted before lapsed with the old one)
        state = bind(state, now=now, opens_at=None, closes_at=None)
        granted = []
    if state.get("prevent_self", True) and state.get("requested_by") == who:
        return Grant("self", "you asked for this run; someone else must approve it")
    if any(g.get("who") == who for g in granted):
        return Grant("already", f"you approved it already ({_counted(granted, need)})")
    if len(granted) >= need:
        return Grant("already", f"it is approved already ({_counted(granted, need)})")
    granted.append({"who": who, "at": now.isoformat(), "event": event_id})
    new = {**state, "granted": granted}
    return Grant("approved" if len(granted) >= need else "counted", _counted(granted, need), new)


def _counted(granted: list[dict[str, Any]], need: int) -> str:
    return f"{len(granted)} of {need} approvals"
