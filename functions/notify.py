"""notify: ``upgrade.succeeded`` / ``upgrade.failed`` / ``upgrade.halted`` / ``stage.failed`` → chat.

Posts one short Slack-compatible message (``{"text": ...}``) to every incoming-webhook URL read
from the environment variables named in ``fleet.notify.webhook_envs`` — one POST per webhook.

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

import aiohttp
from pydantic import SecretStr

from events.catalog import StageFailed, UpgradeFailed, UpgradeHalted, UpgradeSucceeded
from events.envelope import Event
from shared.bus.base import Emitted
from shared.clouds.credentials import read_secret
from shared.clouds.sessions import get_session
from shared.errors import ConfigError, Conflict, TransientError
from shared.runtime.function import Context, upshift_function

__all__ = ["BUCKET", "NotifyFailed", "message", "notify"]

BUCKET = "notified"
MAX_DETAIL = 300
_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


class NotifyFailed(TransientError):
    """Some webhooks did not take the message; names their environment variables, never the URLs."""


#: What notify consumes (serverless.yml).
Input = Event[UpgradeSucceeded] | Event[UpgradeFailed] | Event[UpgradeHalted] | Event[StageFailed]


@upshift_function
async def notify(event: Input, ctx: Context) -> list[Emitted]:
    envs = ctx.fleet.notify.webhook_envs if ctx.fleet is not None else []
    text = message(event)
    results = await asyncio.gather(*(_deliver(env, text, event.id, ctx) for env in envs))
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
        return f":octagonal_sign: waves after wave {d.wave}{where} halted{culprit}: {_escape(d.reason)}"
    if isinstance(d, StageFailed):
        return f":warning: *{d.target}* ({d.kind}) stage {d.stage} to {d.to_version} failed: {_detail(d.code, d.message)}"
    return f"{event.type}: {_escape(str(event.subject or event.id))}"


async def _deliver(env: str, text: str, event_id: str, ctx: Context) -> bool:
    """POST once unless already delivered; True when this webhook has the message."""
    key = f"{event_id}/{env}"
    if await ctx.store.kv.get(BUCKET, key) is not None:
        return True
    try:
        url = read_secret(env)
    except ConfigError:
        ctx.log.error("notify webhook variable is not set; skipped", env=env)
        return True
    if not await _post(url, text, env, ctx):
        return False
    try:
        await ctx.store.kv.create(BUCKET, key, {"at": ctx.clock.now().isoformat()})
    except Conflict:
        pass  # a concurrent redelivery recorded it first
    return True


async def _post(url: SecretStr, text: str, env: str, ctx: Context) -> bool:
    try:
        async with get_session().post(url.get_secret_value(), json={"text": text}, timeout=_TIMEOUT) as r:
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
    return _escape(detail)


def _escape(text: str) -> str:
    # Slack's three control characters; a vendor message with '<' must not become a link.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
