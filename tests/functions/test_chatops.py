"""Operator control in simulated time: approvals, deny, freezes, cancel, the audit — on both buses.

The real window_clock, plan_upgrades, start_upgrades and chat_command run on a real bus (SQLite
and NATS) with a FakeClock (tests/functions/_planning.py). Commands arrive as ``chat.command``
events with ``via=slack`` as the Slack edge publishes them (the edge itself, with signatures, is
tested in test_chat_slack.py). The fleet's window opens 02:00 Europe/Berlin (00:00 UTC in June)
for 2 h; wave 0 (the canary) needs one approval.
"""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from events import Event, T
from events.catalog import ApprovalBinding, ChatCommand
from shared.domain.stages import run_id
from tests.functions._planning import Harness, bus_url, fleet_from, utc
from tests.helpers import eventually

FLEET = """
clouds:
  huawei: {region: ap-southeast-1, project_id: p1}
windows:
  night: {rrule: "FREQ=DAILY;BYHOUR=2", duration: 2h, timezone: Europe/Berlin, cutoff: 30m, concurrency: 2}
waves:
  bake: 30m
  approval:
    0: {min_approvals: 1, approvers: [leads]}
durations: {cce: {precheck: 20m}}
chat:
  slack: {signing_secret_env: SLACK_SIGNING_SECRET}
  contact: "#platform-oncall"
rbac:
  - {name: leads, role: approver, slack: ["T1/ULEAD", "T1/ULEAD2"]}
  - {name: oncall, role: operator, slack: ["T1/UOPS"]}
  - {name: readers, role: viewer, slack: ["T1/UVIEW"]}
  - {name: other-approvers, role: approver, slack: ["T1/UOTHER"]}
targets:
  - {name: canary, kind: cce, cluster_id: c0, window: night, wave: 0, version: v1.28.0-r0}
  - {name: prod-a, kind: cce, cluster_id: c1, window: night, wave: 1, version: v1.28.0-r0}
"""
ALL = ("window_clock", "plan_upgrades", "start_upgrades", "chat_command")
CANARY = run_id("canary", "v1.29.0-r0")
PROD = run_id("prod-a", "v1.29.0-r0")
_ids = count()


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    return bus_url(request, tmp_path)


async def say(
    h: Harness, user: str, text: str, *, binding: ApprovalBinding | None = None, via: str = "slack"
) -> dict[str, Any]:
    """Send a command as Slack user T1/<user>; its audit entry (what it did and said)."""
    n = next(_ids)
    data = ChatCommand(
        platform="slack",
        team="T1",
        user=user,
        channel="C1",
        text=text,
        trigger_id=f"trig-{n}",
        response_url="https://hooks.slack.com/commands/T1/1/x",
        binding=binding,
        action_id="upshift.approve" if binding else None,
    )
    event = Event(type=T.CHAT_COMMAND, data=data, extensions={"via": via})
    await h.publish(event)
    entry = await h.store.audit.get(event.id)
    assert entry is not None, f"no audit entry for {text!r}"
    return entry


def started(h: Harness) -> list[str]:
    return [e.data.target for e in h.events(T.STAGE_REQUESTED)]


async def planned(h: Harness) -> None:
    await h.at(utc("2026-06-09T12:00:00"))
    await h.release("cce", "v1.29.0-r0")


async def test_a_canary_waits_for_approval_and_starts_once_approved(backend):
    async with Harness(backend, fleet_from(FLEET), utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        assert (await h.run(CANARY))["state"] == "awaiting_approval"
        assert (await h.run(PROD))["state"] == "planned", "wave 1 has no approval rule"
        [req] = h.events(T.APPROVAL_REQUESTED)
        assert req.data.run == CANARY and req.data.min_approvals == 1 and req.data.approvers == ["leads"]
        # bound to the next opening (00:00 UTC), expiring when it closes
        assert req.data.occurrence == "2026-06-10T00:00:00+00:00"
        assert req.data.expires_at == utc("2026-06-10T02:00:00")

        await h.at(utc("2026-06-10T00:00:00"))
        assert started(h) == [], "the window is open but the canary is not approved"

        viewer = await say(h, "UVIEW", f"approve {CANARY}")
        assert viewer["outcome"] == "refused" and "approver" in viewer["reply"]
        operator = await say(h, "UOPS", f"approve {CANARY}")
        assert operator["outcome"] == "refused"
        stranger = await say(h, "UNOBODY", f"approve {CANARY}")
        assert stranger["outcome"] == "refused" and "#platform-oncall" in stranger["reply"]
        outsider = await say(h, "UOTHER", f"approve {CANARY} lgtm")
        assert outsider["outcome"] == "refused" and "leads" in outsider["reply"], "not in the approvers group"
        assert started(h) == []

        ok = await say(h, "ULEAD", f"approve {CANARY} release notes read")
        assert ok["outcome"] == "ok", ok["reply"]
        assert ok["actor"] == "slack:T1/ULEAD" and ok["run"] == CANARY and ok["trigger_id"]
        [approved] = h.events(T.RUN_APPROVED)
        assert approved.data.approved_by == ["slack:T1/ULEAD"]
        assert started(h) == ["canary"]
        run = await h.run(CANARY)
        assert run["state"] == "running" and run["approved_by"] == ["slack:T1/ULEAD"]

        again = await say(h, "ULEAD2", f"approve {CANARY}")
        assert again["outcome"] == "invalid", "a started run takes no more approvals"
        assert len(h.events(T.RUN_APPROVED)) == 1 and started(h) == ["canary"]
        # every command is in the audit, each with its reply sent back to Slack
        entries = await h.store.audit.entries(run=CANARY)
        assert [e["actor"] for e in entries] == [
            "slack:T1/UVIEW",
            "slack:T1/UOPS",
            "slack:T1/UNOBODY",
            "slack:T1/UOTHER",
            "slack:T1/ULEAD",
            "slack:T1/ULEAD2",
        ]
        assert len(h.events(T.CHAT_REPLY)) == 6


async def test_approving_twice_and_an_expired_request_are_refused(backend):
    fleet = fleet_from(FLEET.replace("min_approvals: 1", "min_approvals: 2"))
    async with Harness(backend, fleet, utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        [req] = h.events(T.APPROVAL_REQUESTED)
        button = ApprovalBinding(run=CANARY, to_version="v1.29.0-r0", occurrence=req.data.occurrence)
        first = await say(h, "ULEAD", f"approve {CANARY}", binding=button)
        assert first["outcome"] == "ok" and "1 of 2" in first["reply"]
        twice = await say(h, "ULEAD", f"approve {CANARY}", binding=button)
        assert twice["outcome"] == "invalid" and "already" in twice["reply"]
        assert h.events(T.RUN_APPROVED) == []

        # the occurrence closes unapproved: the request lapses
        await h.at(utc("2026-06-10T02:00:00"))
        late = await say(h, "ULEAD2", f"approve {CANARY}", binding=button)
        assert late["outcome"] == "invalid" and "expired" in late["reply"]
        assert started(h) == []

        # the next opening binds a new request; the old button is stale there
        await h.at(utc("2026-06-11T00:00:00"))
        reqs = h.events(T.APPROVAL_REQUESTED)
        assert len(reqs) == 2 and reqs[1].data.occurrence == "2026-06-11T00:00:00+00:00"
        assert reqs[1].id != reqs[0].id
        stale = await say(h, "ULEAD2", f"approve {CANARY}", binding=button)
        assert stale["outcome"] == "invalid" and "earlier" in stale["reply"]
        fresh = ApprovalBinding(run=CANARY, to_version="v1.29.0-r0", occurrence=reqs[1].data.occurrence)
        assert (await say(h, "ULEAD", f"approve {CANARY}", binding=fresh))["outcome"] == "ok"
        done = await say(h, "ULEAD2", f"approve {CANARY}", binding=fresh)
        assert done["outcome"] == "ok" and "approved" in done["reply"]
        assert started(h) == ["canary"]
        assert (await h.run(CANARY))["approved_by"] == ["slack:T1/ULEAD", "slack:T1/ULEAD2"]


async def test_deny_ends_the_run_denied(backend):
    async with Harness(backend, fleet_from(FLEET), utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        bad = await say(h, "ULEAD", f"deny {CANARY}")
        assert bad["outcome"] == "invalid" and "usage" in bad["reply"], "a deny needs a reason"
        out = await say(h, "ULEAD", f"deny {CANARY} broker regression in the notes")
        assert out["outcome"] == "ok"
        run = await h.run(CANARY)
        assert run["state"] == "denied" and run["denied_by"] == "slack:T1/ULEAD"
        [denied] = h.events(T.RUN_DENIED)
        assert denied.data.reason == "broker regression in the notes"
        assert CANARY not in (await h.waves())["runs"]
        late = await say(h, "ULEAD2", f"approve {CANARY}")
        assert late["outcome"] == "invalid"
        await h.at(utc("2026-06-10T00:00:00"))
        assert "canary" not in started(h)


async def test_a_freeze_blocks_start_upgrades_until_lifted(backend):
    fleet = fleet_from(FLEET.replace("0: {min_approvals: 1, approvers: [leads]}", "5: {min_approvals: 1}"))
    async with Harness(backend, fleet, utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        refused = await say(h, "UVIEW", "freeze all for 6h incident 4711")
        assert refused["outcome"] == "refused"
        out = await say(h, "UOPS", "freeze all for 14h incident 4711")
        assert out["outcome"] == "ok", out["reply"]
        listing = await say(h, "UVIEW", "freezes")
        assert "incident 4711" in listing["reply"]
        await h.at(utc("2026-06-10T00:00:00"))
        assert started(h) == [], "frozen until 02:00 UTC"
        assert (await say(h, "UOPS", "unfreeze all"))["outcome"] == "ok"
        assert h.events(T.CONTROL_CHANGED), "start_upgrades is told to look again"
        assert started(h) == ["canary"]


async def test_a_fleet_blackout_blocks_start_upgrades_and_ends_by_itself(backend):
    text = (
        FLEET.replace("0: {min_approvals: 1, approvers: [leads]}", "5: {min_approvals: 1}")
        + """
freezes:
  - {name: release-day, scope: all, start: "2026-06-09T00:00:00Z", end: "2026-06-10T00:30:00Z", reason: launch}
"""
    )
    async with Harness(backend, fleet_from(text), utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        await h.at(utc("2026-06-10T00:00:00"))
        assert started(h) == []
        nope = await say(h, "UOPS", "unfreeze all")
        assert nope["outcome"] == "invalid" and "release-day" in nope["reply"], "a fleet freeze is the file's"
        assert [e for e, _ in h.delayed(T.WAVE_READY)], "a look is scheduled for the freeze's end"
        await h.at(utc("2026-06-10T00:31:00"))
        await eventually(lambda: started(h) == ["canary"])  # the freeze ended inside the window


async def test_cancel_before_start_ends_the_run_and_frees_the_window(backend):
    fleet = fleet_from(FLEET.replace("0: {min_approvals: 1, approvers: [leads]}", "5: {min_approvals: 1}"))
    async with Harness(backend, fleet, utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        assert (await say(h, "UVIEW", f"cancel {CANARY}"))["outcome"] == "refused"
        out = await say(h, "UOPS", f"cancel {CANARY}")
        assert out["outcome"] == "ok" and "before it started" in out["reply"]
        assert (await h.run(CANARY))["state"] == "cancelled"
        assert [e.data.run for e in h.events(T.UPGRADE_CANCELLED)] == [CANARY]
        assert CANARY not in (await h.waves())["runs"]
        again = await say(h, "UOPS", f"cancel {CANARY}")
        assert again["outcome"] == "invalid" and "cancelled" in again["reply"]
        await h.at(utc("2026-06-10T00:00:00"))
        assert started(h) == ["prod-a"], "with the canary gone, wave 1 is next"


async def test_bad_text_and_an_untrusted_source_get_answers_not_errors(backend):
    async with Harness(backend, fleet_from(FLEET), utc("2026-06-09T12:00:00"), functions=ALL) as h:
        unknown = await say(h, "UOPS", "upgrdae canary to v1.29.0-r0")
        assert unknown["outcome"] == "invalid" and "did you mean 'upgrade'" in unknown["reply"]
        forged = await say(h, "ULEAD", "pause all", via="token:nobody")
        assert forged["outcome"] == "refused", "a token no fleet entry knows is nobody"
        unsigned = await say(h, "ULEAD", "pause all", via="mallory")
        assert unsigned["outcome"] == "refused" and unsigned["actor"] is None
        helped = await say(h, "UVIEW", "help")
        assert helped["outcome"] == "ok" and "approve" in helped["reply"]
        assert len(h.events(T.CHAT_REPLY)) == 4


async def test_upgrade_from_chat_needs_someone_else_to_approve(backend):
    fleet = fleet_from(
        FLEET.replace("min_approvals: 1, approvers: [leads]", "min_approvals: 1, prevent_self_approval: true")
    )
    async with Harness(backend, fleet, utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await h.at(utc("2026-06-09T12:00:00"))
        older = await say(h, "ULEAD", "upgrade canary to v1.27.0-r0")
        assert older["outcome"] == "invalid" and "not newer" in older["reply"]
        bad = await say(h, "ULEAD", "upgrade canary to 1.x")
        assert bad["outcome"] == "invalid"
        x = await say(h, "UVIEW", "upgrade canary to v1.29.1-r0")
        assert x["outcome"] == "refused", "operator and above"
        out = await say(h, "ULEAD", "upgrade canary to v1.29.1-r0 now")
        assert out["outcome"] == "ok" and "waits for approval" in out["reply"], out["reply"]
        rid = run_id("canary", "v1.29.1-r0")
        assert (await h.run(rid))["requested_by"] == "slack:T1/ULEAD"
        [req] = h.events(T.APPROVAL_REQUESTED)
        assert req.data.run == rid
        self_ok = await say(h, "ULEAD", f"approve {rid}")
        assert self_ok["outcome"] == "refused" and "someone else" in self_ok["reply"]
        assert (await say(h, "ULEAD2", f"approve {rid}"))["outcome"] == "ok"
        await h.at(utc("2026-06-10T00:00:00"))
        assert started(h) == ["canary"]


async def test_a_redelivered_command_does_the_same_once(backend):
    """The handler run twice on one event (a redelivery after a crash before the ack): one
    approval counted, one audit entry, the very same events (ids) both times."""
    async with Harness(backend, fleet_from(FLEET), utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        from functions.chat_command import chat_command

        event = Event(
            type=T.CHAT_COMMAND,
            data=ChatCommand(
                team="T1",
                user="ULEAD",
                channel="C1",
                text=f"approve {CANARY}",
                response_url="https://hooks.slack.com/x",
            ),
            extensions={"via": "slack"},
        )
        ctx = h.runtime.context("chat_command")
        first = await chat_command(event, ctx)
        second = await chat_command(event, ctx)
        assert [e.id for e in first] == [e.id for e in second]
        assert sorted(e.type for e in first) == [T.CHAT_REPLY, T.RUN_APPROVED]
        assert len(await h.store.audit.entries(run=CANARY)) == 1
        assert (await h.run(CANARY))["approved_by"] == ["slack:T1/ULEAD"]
        state = (await h.waves())["runs"][CANARY]["approval"]
        assert len(state["granted"]) == 1


@pytest.mark.parametrize(
    "text",
    [
        f"deny {CANARY} not tonight",
        f"cancel {PROD}",
        "cancel wave:1",
        "pause kind:cce",
        "resume all",
        "freeze window:night for 2h change freeze",
        "unfreeze all",
        "upgrade prod-a to v1.30.0-r0",
        "status",
    ],
)
async def test_every_command_replayed_emits_the_same_events(backend, text):
    """A redelivery of any command (its handler run again on the same event) writes nothing new
    and emits the very same events; one audit entry."""
    async with Harness(backend, fleet_from(FLEET), utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        await say(h, "ULEAD", "pause kind:cce")  # so that resume has something to lift
        await say(h, "ULEAD", "freeze all for 1h so unfreeze has one")
        from functions.chat_command import chat_command

        event = Event(
            type=T.CHAT_COMMAND,
            data=ChatCommand(
                team="T1", user="ULEAD", channel="C1", text=text, response_url="https://hooks.slack.com/x"
            ),
            extensions={"via": "slack"},
        )
        ctx = h.runtime.context("chat_command")
        first = await chat_command(event, ctx)
        entry = await h.store.audit.get(event.id)
        second = await chat_command(event, ctx)
        assert entry is not None and entry["outcome"] == "ok", entry
        assert [e.id for e in first] == [e.id for e in second]
        again = await h.store.audit.get(event.id)
        assert again is not None and again["reply"] == entry["reply"] and again["at"] == entry["at"]


async def test_resume_lifts_a_halt_after_a_failed_canary(backend):
    fleet = fleet_from(FLEET.replace("0: {min_approvals: 1, approvers: [leads]}", "5: {min_approvals: 1}"))
    async with Harness(backend, fleet, utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        await h.at(utc("2026-06-10T00:00:00"))
        [canary] = h.events(T.STAGE_REQUESTED)
        await h.outcome(canary, ok=False, stage="precheck")
        assert len(h.events(T.UPGRADE_HALTED)) == 1
        await h.at(utc("2026-06-10T00:40:00"))
        assert started(h) == ["canary"], "halted: wave 1 waits"
        assert (await say(h, "UVIEW", "resume window:night"))["outcome"] == "refused"
        out = await say(h, "UOPS", "resume window:night")
        assert out["outcome"] == "ok" and "un-halted night" in out["reply"], out["reply"]
        assert started(h) == ["canary", "prod-a"]
        status = await say(h, "UVIEW", "status")
        assert status["outcome"] == "ok" and "prod-a" in status["reply"] and "halted" not in status["reply"]


async def test_every_command_of_the_grammar_is_in_the_audit(backend):
    from shared.domain.commands import GRAMMAR

    samples = {
        "help": "help",
        "status": f"status {CANARY}",
        "plan": "plan cce=v1.30.0-r0",
        "upgrade": "upgrade prod-a to v1.30.0-r0",
        "approve": f"approve {CANARY} looks good",
        "deny": f"deny {PROD} wrong night",
        "pause": "pause wave:1",
        "resume": "resume wave:1",
        "cancel": "cancel prod-a",
        "freeze": "freeze kind:cce for 30m db migration",
        "unfreeze": "unfreeze kind:cce",
        "freezes": "freezes",
        "audit": f"audit {CANARY}",
    }
    assert set(samples) == {s.name for s in GRAMMAR}, "a command was added to the grammar: add a sample"
    async with Harness(backend, fleet_from(FLEET), utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await planned(h)
        for name, text in samples.items():
            entry = await say(h, "ULEAD", text)
            assert entry["command"] == name and entry["actor"] == "slack:T1/ULEAD"
            assert entry["team"] == "T1" and entry["channel"] == "C1" and entry["trigger_id"]
            assert entry["outcome"] in ("ok", "invalid"), (name, entry["reply"])
        entries = await h.store.audit.entries()
        assert [e["command"] for e in entries] == list(samples)
        assert all(e["reply"] for e in entries)


async def test_a_bots_upgrade_requested_is_the_upgrade_command_of_its_token(backend):
    from events.catalog import UpgradeRequested

    text = (
        FLEET
        + """
auth:
  tokens:
    - {name: deploy-bot, token_env: UPSHIFT_T_DEPLOY_BOT, role: approver, publish: [upgrade.requested]}
"""
    )
    functions = (*ALL, "upgrade_request")
    async with Harness(backend, fleet_from(text), utc("2026-06-09T12:00:00"), functions=functions) as h:
        data = UpgradeRequested(target="prod-a", to_version="v1.30.0-r0", requested_by="alice")
        await h.publish(Event(type=T.UPGRADE_REQUESTED, data=data, extensions={"via": "token:deploy-bot"}))
        rid = run_id("prod-a", "v1.30.0-r0")
        run = await h.run(rid)
        assert run is not None and run["state"] == "planned" and run["requested_by"] == "token:deploy-bot"
        [entry] = await h.store.audit.entries(run=rid)
        assert entry["command"] == "upgrade" and entry["actor"] == "token:deploy-bot"
        assert entry["on_behalf_of"] == "alice" and entry["outcome"] == "ok"
        # published inside the pipeline without a via (no authenticated edge): refused, recorded
        other = UpgradeRequested(target="canary", to_version="v1.30.0-r0")
        await h.publish(Event(type=T.UPGRADE_REQUESTED, data=other))
        assert await h.run(run_id("canary", "v1.30.0-r0")) is None
        refused = [e for e in await h.store.audit.entries() if e["outcome"] == "refused"]
        assert len(refused) == 1 and refused[0]["actor"] is None
