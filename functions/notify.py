"""notify: outcomes, stage failures and approval requests → chat.

Consumes ``upgrade.succeeded`` / ``upgrade.failed`` / ``upgrade.halted`` / ``stage.failed`` /
``upgrade.cancelled``, and the approval flow's ``approval.requested`` / ``run.approved`` /
``run.denied``. Posts one short Slack-compatible message (``{"text": ...}``) to every
incoming-webhook URL read from the environment variables named in ``fleet.notify.webhook_envs``
— one POST per webhook. An approval request also carries Block Kit Approve/Deny buttons
(:func:`approval_blocks`) whose ``value`` is the request's binding (run, target version, window
occurrence), which the Slack interactivity edge turns into ``approve``/``deny`` commands. An
outcome of an approved run names who approved it (the ledger's ``approved_by``).

Delivery: each webhook that answered 2xx is recorded in the store (bucket ``notified``, key
``<event id>/<env name>``), and a redelivery skips it. If any webhook fails the handler raises
:class:`NotifyFailed` after trying all of them, so the bus retries just the failed ones. A
webhook can still get a message twice if the process dies between its 2xx and the record — chat
tolerates that better than a lost failure notice. An unset variable is logged and skipped (a
retry would not set it).

The URLs are secrets: they are never logged nor put in an error message (only the variable names).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from pydantic import SecretStr

from events.catalog import (
    ApprovalBinding,
    ApprovalRequested,
    RunApproved,
    RunDenied,
    StageFailed,
    UpgradeCancelled,
    UpgradeFailed,
    UpgradeHalted,
    UpgradeSucceeded,
)
from events.envelope import Event
from shared.bus.base import Emitted
from shared.clouds.credentials import read_secret
from shared.clouds.sessions import get_session
from shared.domain.chat import escape_mrkdwn
from shared.errors import ConfigError, Conflict, TransientError
from shared.runtime.function import Context, upshift_function

__all__ = ["APPROVE_ACTION", "BUCKET", "DENY_ACTION", "NotifyFailed", "approval_blocks", "message", "notify"]

#: The ``action_id`` of the Approve / Deny buttons (the Slack interactivity edge acts on these).
APPROVE_ACTION = "upshift.approve"
DENY_ACTION = "upshift.deny"

BUCKET = "notified"
MAX_DETAIL = 300
_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


class NotifyFailed(TransientError):
    """Some webhooks did not take the message; names their environment variables, never the URLs."""


#: What notify consumes (serverless.yml).
Input = (
    Event[UpgradeSucceeded]
    | Event[UpgradeFailed]
    | Event[UpgradeHalted]
    | Event[StageFailed]
    | Event[UpgradeCancelled]
    | Event[ApprovalRequested]
    | Event[RunApproved]
    | Event[RunDenied]
)


@upshift_function
async def notify(event: Input, ctx: Context) -> list[Emitted]:
    envs = ctx.fleet.notify.webhook_envs if ctx.fleet is not None else []
    text = message(event)
    if isinstance(event.data, UpgradeSucceeded | UpgradeFailed) and event.runid:
        run = await ctx.store.ledger.run(event.runid)
        if run and run.get("approved_by"):
            text += f" (approved by {escape_mrkdwn(', '.join(run['approved_by']))})"
    body: dict[str, Any] = {"text": text}
    if isinstance(event.data, ApprovalRequested):
        body["blocks"] = approval_blocks(event.data, text)
    results = await asyncio.gather(*(_deliver(env, body, event.id, ctx) for env in envs))
    failed = [env for env, ok in zip(envs, results, strict=True) if not ok]
    if failed:
        raise NotifyFailed(f"webhooks failed: {', '.join(failed)}")
    return []


def message(event: Input) -> str:
    """The one-line chat text for an event (Slack mrkdwn, vendor text escaped and shortened)."""
    d = event.data
    if isinstance(d, UpgradeSucceeded):
        return f":white_check_mark: *{d.target}* ({d.kind}) upgraded {d.from_version} → {d.to_version}"
    if isinstance(d, UpgradeFailed):
        return (
            f":x: *{d.target}* ({d.kind}) upgrade {d.from_version} → {d.to_version} failed at "
            f"{d.stage}: {_detail(d.code, d.message)}"
        )
    if isinstance(d, UpgradeHalted):
        where = f" in window {d.window}" if d.window else ""
        culprit = f" ({d.failed_target} failed)" if d.failed_target else ""
        return f":octagonal_sign: waves after wave {d.wave}{where} halted{culprit}: {escape_mrkdwn(d.reason)}"
    if isinstance(d, StageFailed):
        return f":warning: *{d.target}* ({d.kind}) stage {d.stage} to {d.to_version} failed: {_detail(d.code, d.message)}"
    if isinstance(d, UpgradeCancelled):
        return f":heavy_minus_sign: *{d.target}* ({d.kind}) upgrade to {d.to_version} cancelled by {escape_mrkdwn(d.by)}"
    if isinstance(d, ApprovalRequested):
        where = f" in window {d.window}" if d.window else ""
        return (
            f":raised_hand: *{d.target}* ({d.kind}) {d.from_version} → {d.to_version}{where} (wave {d.wave}) needs "
            f"{d.min_approvals} approval(s) by {d.expires_at.isoformat()}: `/upshift approve {d.run}`"
        )
    if isinstance(d, RunApproved):
        return f":ballot_box_with_check: *{d.target}* → {d.to_version} approved by {escape_mrkdwn(', '.join(d.approved_by))}"
    if isinstance(d, RunDenied):
        return f":no_entry: *{d.target}* → {d.to_version} denied by {escape_mrkdwn(d.by)}: {escape_mrkdwn(d.reason)}"
    return f"{event.type}: {escape_mrkdwn(str(event.subject or event.id))}"


def approval_blocks(d: ApprovalRequested, text: str) -> list[dict[str, Any]]:
    """Block Kit: the request's text and Approve / Deny buttons bound to this request."""
    value = ApprovalBinding(run=d.run, to_version=d.to_version, occurrence=d.occurrence).model_dump_json()

    def button(label: str, action: str, style: str) -> dict[str, Any]:
        return {
            "type": "button",
            "action_id": action,
            "style": style,
            "text": {"type": "plain_text", "text": label},
            "value": value,
        }

    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": f"upshift-approval-{d.run}",
            "elements": [button("Approve", APPROVE_ACTION, "primary"), button("Deny", DENY_ACTION, "danger")],
        },
    ]


async def _deliver(env: str, body: dict[str, Any], event_id: str, ctx: Context) -> bool:
    """POST once unless already delivered; True when this webhook has the message."""
    key = f"{event_id}/{env}"
    if await ctx.store.kv.get(BUCKET, key) is not None:
        return True
    try:
        url = read_secret(env)
    except ConfigError:
        ctx.log.error("notify webhook variable is not set; skipped", env=env)
        return True
    if not await _post(url, body, env, ctx):
        return False
    try:
        await ctx.store.kv.create(BUCKET, key, {"at": ctx.clock.now().isoformat()})
    except Conflict:
        pass  # a concurrent redelivery recorded it first
    return True


async def _post(url: SecretStr, body: dict[str, Any], env: str, ctx: Context) -> bool:
    try:
        async with get_session().post(url.get_secret_value(), json=body, timeout=_TIMEOUT) as r:
            if 200 <= r.status < 300:
                return True
            ctx.log.warning("notify webhook refused", env=env, status=r.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # aiohttp puts the URL in its messages: log the type only.
        ctx.log.warning("notify webhook unreachable", env=env, error=type(exc).__name__)
    return False


def _detail(code: str, text: str) -> str:
    detail = f"{code} {text}".strip()
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 1] + "…"
    return escape_mrkdwn(detail)
