"""`upshift demo --approvals` as a user runs it (a subprocess, fresh state), and the demo's
approver (shared/ops/demo_approver.py) against the real Slack interactivity edge: the click it
sends is one signed ``block_actions`` → exactly one ``chat.command``; what it cannot do is said,
naming what did not happen."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from events.catalog import ApprovalRequested
from events.envelope import consequence_id
from functions.notify import APPROVE_ACTION, approval_blocks
from shared.clock import Clock, FakeClock
from shared.ops.demo_approver import (
    APPROVER,
    MAX_ATTEMPTS,
    SIGNING_SECRET_ENV,
    TEAM,
    WEBHOOK_ENV,
    Approver,
    Click,
)
from tests.functions._chat import NOW, ChatServer
from tests.helpers import ROOT, eventually

FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: cce-001, kind: cce, cluster_id: c-1, wave: 0}}
chat:
  slack: {{signing_secret_env: {SIGNING_SECRET_ENV}, teams: [{TEAM}]}}
"""
RUN = "r0123456789abcde"
REQUEST = ApprovalRequested(
    run=RUN,
    target="cce-001",
    kind="cce",
    from_version="v1.28",
    to_version="v1.29",
    window="sat-night",
    occurrence="2024-08-03T17:00:00+00:00",
    expires_at=NOW + timedelta(hours=8),
    approvers=["demo-approvers"],
)


def test_demo_with_approvals_waits_for_the_canaries_and_approves_them_through_slack():
    r = subprocess.run(
        [sys.executable, "-m", "shared.ops.cli", "demo", "--approvals", "--json", "--targets", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    summary = json.loads(r.stdout)
    assert summary["ok"] is True and summary["problems"] == [], summary["problems"]
    rows = summary["targets"]
    canaries = [row for row in rows if row["wave"] == 0]
    assert {row["kind"] for row in canaries} == {"cce", "autopilot", "starrocks", "oceanbase", "ncloud-kafka"}
    assert len(rows) == 10
    for row in rows:
        assert row["result"] == "upgraded" and row["version_now"] == row["to"] != row["from"], row
        if row["wave"] == 0:
            assert row["approved_by"] == [APPROVER], row
            assert row["audit"] >= 1, row
        else:
            assert row["approved_by"] == [], row
    # one request per canary, each clicked (a stale timestamp may have cost a re-send)
    assert summary["approvals"]["requests"] == len(canaries)
    assert summary["approvals"]["clicks"] >= len(canaries)
    progress = [line for line in r.stderr.splitlines() if line.startswith("[") and "[approver]" not in line]
    for row in canaries:
        lines = [line for line in progress if f" {row['target']} " in line]
        waiting = next(i for i, line in enumerate(lines) if "waiting for approval" in line)
        approved = next(i for i, line in enumerate(lines) if f"approved by {APPROVER}" in line)
        finished = next(i for i, line in enumerate(lines) if line.rstrip().endswith("succeeded"))
        assert waiting < approved < finished, lines


# -- the approver against the real edge ----------------------------------------------------------


@pytest.fixture
async def edge(tmp_path, monkeypatch):
    # the approver sets both in this process's environment: monkeypatch puts them back after
    monkeypatch.setenv(SIGNING_SECRET_ENV, "replaced-by-the-approver")
    monkeypatch.setenv(WEBHOOK_ENV, "replaced-by-the-approver")
    async with ChatServer(f"sqlite:///{tmp_path}/u.db", FLEET) as server:
        yield server


def base_url(server: ChatServer) -> str:
    assert server.client is not None
    return str(server.client.make_url("")).rstrip("/")


async def approver_at(
    server: ChatServer, clock: Clock, deadline_s: float = 120.0
) -> tuple[Approver, list[str]]:
    said: list[str] = []
    approver = Approver(clock, said.append)
    await approver.start()
    approver.arm(base_url(server), time.monotonic() + deadline_s)
    return approver, said


async def post_request(approver: Approver, body: dict[str, Any] | None = None) -> None:
    """What notify posts for an approval request, to the approver's webhook."""
    text = f"*{REQUEST.target}* needs approval"
    body = body if body is not None else {"text": text, "blocks": approval_blocks(REQUEST, text)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://{approver.address}/webhook", json=body) as r,
    ):
        assert r.status == 200


async def settled(approver: Approver, run: str = RUN) -> Click:
    await eventually(lambda: run in approver.clicks, timeout=30)
    click = approver.clicks[run]
    await eventually(lambda: click.done or click.error is not None, timeout=60)
    return click


async def test_a_click_is_one_signed_block_actions_and_one_chat_command(edge):
    approver, said = await approver_at(edge, edge.clock)
    try:
        await post_request(approver)
        await post_request(approver)  # notify delivering the same request again
        await post_request(approver, {"text": "cce-001 upgraded"})  # no buttons: nothing to click
        approver.shown({"id": RUN, "state": "awaiting_approval"})
        click = await settled(approver)
    finally:
        await approver.close()
    assert click.done and click.error is None and click.attempts == 1, click
    assert list(approver.clicks) == [RUN]
    [cmd] = await edge.commands()
    assert cmd.extensions.get("via") == "slack"
    assert cmd.id == consequence_id("slack-action", TEAM, click.trigger_id, APPROVE_ACTION)
    d = cmd.data
    assert (d.platform, d.team, d.user, d.user_name) == ("slack", TEAM, "U0DEMOAPPROVER", "demo-approver")
    assert d.action_id == APPROVE_ACTION and d.text == f"approve {RUN}"
    assert d.binding is not None
    assert (d.binding.run, d.binding.to_version, d.binding.occurrence) == (RUN, "v1.29", REQUEST.occurrence)
    assert d.response_url == f"http://{approver.address}/response/0"
    assert approver.messages == ["*cce-001* needs approval"] * 2 + ["cce-001 upgraded"]
    assert any("answered 200" in line for line in said)
    assert all(approver.secret not in line for line in said)


async def test_no_click_before_the_run_is_shown_waiting(edge):
    approver, _ = await approver_at(edge, edge.clock, deadline_s=1.0)
    try:
        await post_request(approver)
        approver.shown({"id": RUN, "state": "planned"})  # not waiting: not to be approved
        click = await settled(approver)
    finally:
        await approver.close()
    assert click.error == "the approval request came, but the run was never shown waiting for approval"
    assert click.attempts == 0 and approver.failures == [f"{RUN}: {click.error}"]
    assert await edge.commands() == []


async def test_a_clock_the_server_calls_stale_is_resent_then_given_up_naming_the_speed(edge):
    behind = FakeClock(NOW - timedelta(minutes=10))  # always outside Slack's 5 minutes
    approver, _ = await approver_at(edge, behind)
    try:
        await post_request(approver)
        approver.shown({"id": RUN, "state": "awaiting_approval"})
        click = await settled(approver)
    finally:
        await approver.close()
    assert click.attempts == MAX_ATTEMPTS and click.status == 401
    assert click.error is not None and "stale timestamp" in click.error and "--speed" in click.error
    assert await edge.commands() == []


async def test_a_refused_click_is_not_resent_and_says_why(edge):
    approver, _ = await approver_at(edge, edge.clock)
    try:
        approver.secret = "not-the-servers-secret"  # the server keeps what start() set
        await post_request(approver)
        approver.shown({"id": RUN, "state": "awaiting_approval"})
        click = await settled(approver)
    finally:
        await approver.close()
    assert click.attempts == 1 and click.status == 401
    assert (
        click.error is not None
        and "answered 401" in click.error
        and "signature does not match" in click.error
    )
    assert "not-the-servers-secret" not in click.error
    assert await edge.commands() == []
