"""``upshift demo --approvals``: Slack's part, played on loopback — the channel and the approver.

One small aiohttp server stands in for Slack: it is the fleet's incoming webhook (what
``notify`` posts) and every command's ``response_url`` (what ``chat_reply`` posts). Its
:class:`Approver` is the person in the channel who clicks Approve:

* ``POST /webhook``: a ``notify`` message, answered 200 at once. One whose ``blocks`` hold a
  button with ``action_id`` :data:`~functions.notify.APPROVE_ACTION` is an approval request; the
  button is clicked once per run (a redelivered message is the same request), in a task of its
  own, so the webhook's answer never waits on the click — and only once the demo's progress has
  shown that run waiting for approval (:meth:`Approver.shown`), as a person clicks what they saw.
* ``POST /response/<n>``: a ``chat_reply``'s body (the result of the click), recorded.
* A click is what Slack sends for a button: a ``block_actions`` payload (team, user, channel,
  ``trigger_id``, ``response_url`` → this server, ``actions[0]`` with the button's ``action_id``,
  ``value``, ``block_id``, ``action_ts``), form-encoded as ``payload=<json>``, signed with
  slack_sdk's own generator, POSTed to the server's ``/hooks/chat/slack/interactive``. Done on a
  200. The server checks the timestamp on its domain clock, which runs ``speed`` times faster
  than real time — Slack's 5 minutes can be under a second — so a 401 naming the timestamp (and
  a timeout or a dropped connection) is the same click sent again, with a fresh timestamp and
  signature and the same ``trigger_id`` (hence the same ``chat.command`` id: the server executes
  it once), up to :data:`MAX_ATTEMPTS` times until ``deadline``. Any other answer is the
  :class:`Click`'s failure, kept with its status and the server's words.

:func:`fleet_lines` is the fleet's side (``chat.slack``, ``rbac``, ``notify``) and
:data:`APPROVAL` the canary wave's rule. The signing secret is random per demo and lives only in
this process's environment (:data:`SIGNING_SECRET_ENV`); the webhook URL is
:data:`WEBHOOK_ENV`'s value. What it prints (``say``) is the channel's text and the answers'
statuses, never the secret or a signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from functions.notify import APPROVE_ACTION
from shared.clock import Clock
from shared.runtime.chat_edge import SIGNATURE, TIMESTAMP
from shared.store.ledger import RunState

__all__ = [
    "APPROVAL",
    "APPROVER",
    "GROUP",
    "MAX_ATTEMPTS",
    "SIGNING_SECRET_ENV",
    "TEAM",
    "WEBHOOK_ENV",
    "Approver",
    "Click",
    "fleet_lines",
]

TEAM = "T0DEMO"
USER = "U0DEMOAPPROVER"
USER_NAME = "demo-approver"
CHANNEL = "C0DEMO"
#: The rbac grant whose member approves, and the identity chat_command sees.
GROUP = "demo-approvers"
APPROVER = f"slack:{TEAM}/{USER}"
SIGNING_SECRET_ENV = "UPSHIFT_DEMO_SLACK_SIGNING_SECRET"
WEBHOOK_ENV = "UPSHIFT_DEMO_SLACK_WEBHOOK"
#: ``waves.approval`` of the demo fleet: the canary wave waits for one of :data:`GROUP`.
APPROVAL = f"{{0: {{min_approvals: 1, approvers: [{GROUP}]}}}}"
INTERACTIVE = "/hooks/chat/slack/interactive"
#: Sends of one click at most (stale timestamps, no answer) before it is given up.
MAX_ATTEMPTS = 20
_TIMEOUT = aiohttp.ClientTimeout(total=10)


def fleet_lines(receiver: str) -> list[str]:
    """The fleet's ``chat``, ``rbac`` and ``notify`` blocks for a receiver at ``receiver``
    (``127.0.0.1:<port>``)."""
    return [
        f"chat: {{slack: {{signing_secret_env: {SIGNING_SECRET_ENV}, teams: [{TEAM}], "
        f"response_hosts: ['{receiver}']}}}}",
        f"rbac: [{{name: {GROUP}, role: approver, slack: ['{TEAM}/{USER}']}}]",
        f"notify: {{webhook_envs: [{WEBHOOK_ENV}]}}",
    ]


@dataclass
class Click:
    """One Approve button and what became of clicking it."""

    run: str
    action_id: str
    value: str
    block_id: str
    trigger_id: str
    #: its ``response_url`` is ``/response/<n>`` on the receiver
    n: int
    requested_at: float = field(default_factory=time.monotonic)
    attempts: int = 0
    #: the last answer: 200 when done; None while none came
    status: int | None = None
    #: why it is not done, in the server's words (None while trying or once done)
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status == 200


class Approver:
    """The loopback Slack (module docstring). ``start()``, then ``arm(server, deadline)`` once the
    server listens; ``close()`` ends any click still trying and the receiver."""

    def __init__(self, clock: Clock, say: Callable[[str], None]) -> None:
        self.clock = clock
        self.say = say
        self.secret = secrets.token_hex(32)
        self.clicks: dict[str, Click] = {}  # run id → its button
        self.messages: list[str] = []  # every notify text, in order
        self.replies: list[dict[str, Any]] = []  # every chat_reply body, in order
        self._server: str | None = None
        self._deadline = 0.0
        self._armed = asyncio.Event()
        self._waiting: dict[str, asyncio.Event] = {}  # run id → set once shown waiting
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.address = ""

    async def start(self) -> str:
        """Listen on a free loopback port; its ``127.0.0.1:<port>``. Sets the two env vars."""
        app = web.Application()
        app.router.add_post("/webhook", self._webhook)
        app.router.add_post("/response/{n}", self._response)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.address = f"127.0.0.1:{self._runner.addresses[0][1]}"
        # in-process only, as the simulator's credentials: the server reads both from here
        os.environ[SIGNING_SECRET_ENV] = self.secret
        os.environ[WEBHOOK_ENV] = f"http://{self.address}/webhook"
        self._http = aiohttp.ClientSession(timeout=_TIMEOUT)
        return self.address

    def arm(self, server: str, deadline: float) -> None:
        """Click from now on, at ``server`` (``http://127.0.0.1:<port>``), until ``deadline``
        (``time.monotonic()``)."""
        self._server, self._deadline = server, deadline
        self._armed.set()

    def shown(self, run: dict[str, Any]) -> None:
        """The progress showed ``run`` (a ledger run): one shown waiting for approval may be
        approved — the person in the channel clicks what they have seen waiting."""
        if run.get("state") == RunState.AWAITING_APPROVAL:
            self._waiting_for(str(run.get("id"))).set()

    def _waiting_for(self, run: str) -> asyncio.Event:
        return self._waiting.setdefault(run, asyncio.Event())

    @property
    def failures(self) -> list[str]:
        return [f"{c.run}: {c.error}" for c in self.clicks.values() if c.error]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the receiver ----------------------------------------------------------------------------

    async def _webhook(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "not JSON", "field": "body"}, status=400)
        if isinstance(body, dict):
            text = str(body.get("text", ""))
            self.messages.append(text)
            button = _approve_button(body.get("blocks"))
            if button is not None:
                self._request(button, text)
        return web.json_response({"ok": True})

    async def _response(self, request: web.Request) -> web.Response:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            body = await request.json()
            if isinstance(body, dict):
                self.replies.append(body)
                self.say(f"reply in the channel: {_plain(str(body.get('text', '')))}")
        return web.json_response({"ok": True})

    def _request(self, button: dict[str, str], text: str) -> None:
        value = button["value"]
        try:
            run = str(json.loads(value)["run"])
        except (ValueError, KeyError, TypeError):
            return  # not a binding Upshift posts: nothing to click
        if run in self.clicks:
            return  # the same request delivered again: one click is enough
        trigger = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        click = Click(run, button["action_id"], value, button["block_id"], trigger, len(self.clicks))
        self.clicks[run] = click
        self.say(f"approval request in the channel: {_plain(text)}")
        task = asyncio.create_task(self._click(click))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the click -------------------------------------------------------------------------------

    async def _click(self, click: Click) -> None:
        for ready, missing in (
            (self._armed, "the server never listened for the click"),
            (self._waiting_for(click.run), "the run was never shown waiting for approval"),
        ):
            remaining = self._deadline - time.monotonic() if self._armed.is_set() else None
            try:
                await asyncio.wait_for(ready.wait(), remaining)
            except TimeoutError:
                click.error = f"the approval request came, but {missing}"
                return
        assert self._server is not None and self._http is not None
        self.say(f"clicking Approve on run {click.run} as {USER_NAME}")
        last = ""
        while time.monotonic() < self._deadline and click.attempts < MAX_ATTEMPTS:
            click.attempts += 1
            body = self._form(click)
            ts = str(int(self.clock.timestamp()))
            sig = SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body) or ""
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                TIMESTAMP: ts,
                SIGNATURE: sig,
            }
            try:
                async with self._http.post(self._server + INTERACTIVE, data=body, headers=headers) as r:
                    click.status, text = r.status, await r.text()
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"no answer ({type(exc).__name__})"
                await asyncio.sleep(0.1)
                continue
            if r.status == 200:
                self.say(f"Approve on run {click.run}: the server answered 200 (attempt {click.attempts})")
                return
            if r.status == 401 and _field(text) == TIMESTAMP:
                last = f"401 stale timestamp: {text[:200]}"
                continue  # the domain clock outran the request: the same click, freshly signed
            click.error = f"the interactive edge answered {r.status}: {text[:300]}"
            return
        click.error = (
            f"the Approve click was not taken after {click.attempts} attempt(s), the last: {last}"
            + (" (the machine is too slow for this --speed: try a lower one)" if "stale" in last else "")
        )

    def _form(self, click: Click) -> bytes:
        """The form Slack POSTs when someone clicks a button: ``payload=<block_actions JSON>``."""
        now = self.clock.timestamp()
        payload = {
            "type": "block_actions",
            "user": {"id": USER, "username": USER_NAME, "name": USER_NAME, "team_id": TEAM},
            "api_app_id": "A0UPSHIFTDEMO",
            "container": {"type": "message", "message_ts": f"{now:.6f}", "channel_id": CHANNEL},
            "trigger_id": click.trigger_id,
            "team": {"id": TEAM, "domain": "upshift-demo"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": CHANNEL, "name": "upshift-demo"},
            "response_url": f"http://{self.address}/response/{click.n}",
            "actions": [
                {
                    "action_id": click.action_id,
                    "block_id": click.block_id,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": click.value,
                    "style": "primary",
                    "type": "button",
                    "action_ts": f"{now:.6f}",
                }
            ],
        }
        return urlencode({"payload": json.dumps(payload)}).encode()


def _approve_button(blocks: object) -> dict[str, str] | None:
    """The Approve button in a message's blocks (``action_id``, ``value``, ``block_id``), if any."""
    if not isinstance(blocks, list):
        return None
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") != "actions":
            continue
        for el in block.get("elements") or []:
            if isinstance(el, dict) and el.get("action_id") == APPROVE_ACTION and el.get("value"):
                return {
                    "action_id": str(el["action_id"]),
                    "value": str(el["value"]),
                    "block_id": str(block.get("block_id", "")),
                }
    return None


def _plain(text: str, limit: int = 100) -> str:
    """A chat message as one short terminal line: Slack's emphasis and escapes taken out."""
    out = text.replace("*", "").replace("`", "").replace("&lt;", "<").replace("&gt;", ">")
    out = " ".join(out.replace("&amp;", "&").split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _field(text: str) -> str | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc.get("field") if isinstance(doc, dict) else None
