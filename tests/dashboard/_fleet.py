"""The fleet and the scenario the dashboard's view and API tests share.

A night window (02:00–04:00 Europe/Berlin: 00:00–02:00 UTC in June) with three CCE targets
(the canary in wave 0 waits for approval by the ``leads`` grant), a StarRocks target without a
window (wave 2: no approval), a CCE track policy, a weekly freeze of the CCE targets (Fridays in
Seoul) and a blackout of everything at Christmas; bearer tokens of every role.

:func:`planned` drives the real ``plan_upgrades`` and ``start_upgrades`` (the planning Harness on
SQLite or NATS) to: canary ``awaiting_approval``, prod-a and prod-b ``planned``, sr-1 ``running``.
"""

from __future__ import annotations

from datetime import datetime
from itertools import count

from events import Event, T
from events.catalog import ChatCommand
from tests.functions._planning import Harness, fleet_from, utc

__all__ = ["FLEET", "FUNCTIONS", "START", "TOKENS", "bearer", "command", "fleet", "planned", "run_of"]

#: token name → (env var, value, role)
TOKENS = {
    "board": ("UPSHIFT_T_DASH_BOARD", "board-token-dash-0a1b2c", "viewer"),
    "ops": ("UPSHIFT_T_DASH_OPS", "ops-token-dash-3d4e5f", "operator"),
    "lead": ("UPSHIFT_T_DASH_LEAD", "lead-token-dash-6a7b8c", "approver"),
    "other": ("UPSHIFT_T_DASH_OTHER", "other-token-dash-9d0e1f", "approver"),
}
_tokens = "\n".join(
    f"    - {{name: {name}, token_env: {env}, role: {role}}}" for name, (env, _, role) in TOKENS.items()
)
FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
windows:
  night: {{rrule: "FREQ=DAILY;BYHOUR=2", duration: 2h, timezone: Europe/Berlin, cutoff: 30m, concurrency: 2}}
waves:
  bake: 30m
  approval: {{0: {{approvers: [leads], min_approvals: 1}}}}
durations: {{cce: {{precheck: 20m}}}}
policies:
  - {{match: {{kind: cce}}, track: "v1.29", min_release_age: 1h}}
targets:
  - {{name: canary, kind: cce, cluster_id: c0, window: night, wave: 0, version: v1.28.0-r0}}
  - {{name: prod-a, kind: cce, cluster_id: c1, window: night, wave: 1, version: v1.28.0-r0}}
  - {{name: prod-b, kind: cce, cluster_id: c2, window: night, wave: 1, version: v1.28.0-r0}}
  - {{name: sr-1, kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07,
     starrocks_instance_id: 5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17, wave: 2, version: 3.1.6}}
freezes:
  - {{name: fridays, scope: "kind:cce", rrule: "FREQ=WEEKLY;BYDAY=FR", duration: 24h, timezone: Asia/Seoul,
     reason: reporting}}
  - {{name: xmas, scope: all, start: 2026-12-24, end: 2026-12-26, reason: holidays}}
rbac:
  - {{name: leads, role: approver, tokens: [lead]}}
auth:
  tokens:
{_tokens}
"""
FUNCTIONS = ("window_clock", "plan_upgrades", "start_upgrades", "chat_command")
#: a Tuesday, noon UTC: the window is closed until 00:00 UTC
START = utc("2026-06-09T12:00:00")
_ids = count()


def fleet():  # type: ignore[no-untyped-def]
    return fleet_from(FLEET)


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][1]}"}


def command(text: str, token: str) -> Event:
    """``text`` as the API publishes it for ``token`` (via ``token:<name>``)."""
    data = ChatCommand(platform="api", channel="api", user=token, text=text, trigger_id=f"d{next(_ids)}")
    return Event(type=T.CHAT_COMMAND, data=data, extensions={"via": f"token:{token}"})


async def run_of(h: Harness, target: str) -> dict:
    return next(r for r in await h.store.ledger.runs() if r["target"] == target)


async def planned(h: Harness, at: datetime = START) -> dict[str, str]:
    """Release CCE v1.29.0-r0 (two days old) and StarRocks 3.2.11; target → run id."""
    await h.at(at)
    await h.release("cce", "v1.29.0-r0", released_at=utc("2026-06-07T00:00:00"))
    await h.release("starrocks", "3.2.11", released_at=utc("2026-06-07T00:00:00"))
    return {r["target"]: r["id"] for r in await h.store.ledger.runs()}
