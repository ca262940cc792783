"""The Slack edges (``/hooks/chat/slack``, ``/hooks/chat/slack/interactive``) through `upshift
serve`'s app, with Slack-shaped form bodies signed by slack_sdk's own generator; what lands on
the bus is read back by a durable recorder (tests/functions/_chat.py), on SQLite and on NATS
where that is the point."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from events.catalog import ApprovalBinding
from events.envelope import consequence_id
from shared.runtime.chat_edge import SEEN
from tests.functions._chat import NOW, ChatServer
from tests.functions._planning import bus_url

SECRET = "slack-signing-secret-do-not-leak"
SECRET_ENV = "UPSHIFT_TEST_SLACK_SIGNING_SECRET"
TEAM = "T0SRE"
FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: cce-1, kind: cce, cluster_id: c-1}}
chat:
  slack: {{signing_secret_env: {SECRET_ENV}, teams: [{TEAM}]}}
"""
SLASH = "/hooks/chat/slack"
INTERACTIVE = "/hooks/chat/slack/interactive"
TS = int(NOW.timestamp())
RESPONSE_URL = "https://hooks.slack.com/commands/T0SRE/1234/secretpart"
BINDING = {"run": "r-0123456789abcdef", "to_version": "v1.29.8-r0", "occurrence": "2024-08-02T00:00:00+00:00"}


def slash(text: str = "status cce-1", **over: str) -> bytes:
    """A slash command body: Slack's fields, in Slack's order."""
    fields = {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "team_domain": "sre",
        "enterprise_id": "",
        "enterprise_name": "",
        "channel_id": "C0OPS",
        "channel_name": "ops",
        "user_id": "U0ALICE",
        "user_name": "alice",
        "command": "/upshift",
        "text": text,
        "api_app_id": "A0UPSHIFT",
        "is_enterprise_install": "false",
        "response_url": RESPONSE_URL,
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        **over,
    }
    return urlencode({k: v for k, v in fields.items() if v is not None}).encode()


def block_actions(action_id: str = "upshift.approve", value: object = BINDING, **over: object) -> dict:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0BOB", "username": "bob", "name": "bob", "team_id": TEAM},
        "api_app_id": "A0UPSHIFT",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": "1722506400.000100", "channel_id": "C0OPS"},
        "trigger_id": "13345224609.738474920.aaaa",
        "team": {"id": TEAM, "domain": "sre"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": "C0OPS", "name": "ops"},
        "response_url": "https://hooks.slack.com/actions/T0SRE/1/secretpart",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "approval",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": value if isinstance(value, str) else json.dumps(value),
                "type": "button",
                "action_ts": "1722506401.840180",
            }
        ],
        **over,
    }
    return payload


def form_payload(payload: object) -> bytes:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)}).encode()


def signed(body: bytes, ts: int | str = TS, secret: str = SECRET, **extra: str) -> dict[str, str]:
    sig = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body)
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig or "", **extra}


@pytest.fixture(params=["sqlite", "nats"])
def backend(request, tmp_path) -> str:
    return bus_url(request, tmp_path)


@pytest.fixture
async def slack(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    async with ChatServer(f"sqlite:///{tmp_path}/u.db", FLEET) as server:
        yield server


@pytest.fixture
async def slack_on(backend, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    async with ChatServer(backend, FLEET) as server:
        yield server


# -- accepted ------------------------------------------------------------------------------------


async def test_a_signed_slash_command_publishes_one_chat_command(slack_on):
    body = slash("status <cce-1> & more")
    status, reply = await slack_on.post(SLASH, body, signed(body))
    assert status == 200, reply
    assert reply == {"response_type": "ephemeral", "text": "Working on it: `status &lt;cce-1&gt; &amp; more`"}
    [event] = await slack_on.commands()
    assert event.id == consequence_id("slack", TEAM, "13345224609.738474920.8088930838d88f008e0")
    assert event.extensions == {"via": "slack"}
    d = event.data
    assert (d.platform, d.team, d.user, d.user_name, d.channel) == (
        "slack",
        TEAM,
        "U0ALICE",
        "alice",
        "C0OPS",
    )
    assert (d.text, d.response_url) == ("status <cce-1> & more", RESPONSE_URL)
    assert d.trigger_id == "13345224609.738474920.8088930838d88f008e0"
    assert d.binding is None and d.action_id is None


async def test_an_empty_slash_command_is_help(slack):
    body = slash("")
    status, reply = await slack.post(SLASH, body, signed(body))
    assert status == 200 and reply["text"] == "Working on it: `help`"
    [event] = await slack.commands()
    assert event.data.text == "help"


async def test_approve_and_deny_buttons_publish_commands_bound_to_the_request(slack_on):
    approve = form_payload(block_actions())
    status, reply = await slack_on.post(INTERACTIVE, approve, signed(approve))
    assert (status, reply) == (200, {})
    deny = form_payload(block_actions("upshift.deny", trigger_id="13345224609.738474920.bbbb"))
    status, reply = await slack_on.post(INTERACTIVE, deny, signed(deny))
    assert (status, reply) == (200, {})
    approved, denied = await slack_on.commands()
    assert approved.id == consequence_id(
        "slack-action", TEAM, "13345224609.738474920.aaaa", "upshift.approve"
    )
    assert approved.extensions == {"via": "slack"} and denied.extensions == {"via": "slack"}
    a = approved.data
    assert (a.platform, a.team, a.user, a.user_name, a.channel) == ("slack", TEAM, "U0BOB", "bob", "C0OPS")
    assert a.text == f"approve {BINDING['run']}" and a.action_id == "upshift.approve"
    assert a.binding == ApprovalBinding(**BINDING)
    assert a.response_url == "https://hooks.slack.com/actions/T0SRE/1/secretpart"
    assert denied.data.text == f"deny {BINDING['run']} denied with the Slack button"
    assert denied.data.action_id == "upshift.deny" and denied.data.binding == ApprovalBinding(**BINDING)


async def test_a_click_without_trigger_id_or_channel_is_keyed_on_action_ts(slack):
    payload = block_actions()
    del payload["trigger_id"], payload["channel"]
    body = form_payload(payload)
    status, _ = await slack.post(INTERACTIVE, body, signed(body))
    assert status == 200
    [event] = await slack.commands()
    assert event.id == consequence_id("slack-action", TEAM, "1722506401.840180", "upshift.approve")
    assert event.data.channel == "" and event.data.trigger_id is None


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": "U0BOB"}},
        {"type": "shortcut", "team": {"id": TEAM}},
        "block-actions-with-another-button",
    ],
)
async def test_other_interactions_are_acknowledged_and_ignored(slack, payload):
    if payload == "block-actions-with-another-button":
        payload = block_actions("somebody.elses.button")
    body = form_payload(payload)
    status, reply = await slack.post(INTERACTIVE, body, signed(body))
    assert (status, reply) == (200, {})
    assert await slack.commands() == []


async def test_slacks_ssl_check_is_acknowledged_and_runs_nothing(slack):
    body = b"ssl_check=1&token=legacy-verification-token"
    assert await slack.post(SLASH, body, signed(body)) == (200, {})
    assert (await slack.post(SLASH, body, {}))[0] == 401  # still signed, like every request
    assert await slack.commands() == []


async def test_a_text_over_the_limit_is_answered_and_nothing_published(slack):
    body = slash("status " + "x" * 2000)
    status, reply = await slack.post(SLASH, body, signed(body))
    assert status == 200 and reply["response_type"] == "ephemeral"
    assert "at most 2000" in reply["text"]
    assert await slack.commands() == []


# -- refused: verification -----------------------------------------------------------------------


async def test_unsigned_and_half_signed_requests_are_401(slack):
    body = slash()
    good = signed(body)
    for headers, field in [
        ({}, "X-Slack-Request-Timestamp"),
        ({"X-Slack-Request-Timestamp": str(TS)}, "X-Slack-Signature"),
        ({"X-Slack-Signature": good["X-Slack-Signature"]}, "X-Slack-Request-Timestamp"),
    ]:
        status, reply = await slack.post(SLASH, body, headers)
        assert (status, reply.get("field")) == (401, field), reply
    assert await slack.commands() == []


async def test_a_wrong_signature_is_401(slack):
    body = slash()
    for headers in (
        signed(body, secret="another-apps-secret"),
        signed(slash("cancel all"), ts=TS) | {"X-Slack-Request-Timestamp": str(TS)},  # another body's
        signed(body, ts=TS - 1) | {"X-Slack-Request-Timestamp": str(TS)},  # another timestamp's
        {"X-Slack-Request-Timestamp": str(TS), "X-Slack-Signature": "v0=" + "é" * 64},  # non-ASCII
        {"X-Slack-Request-Timestamp": str(TS), "X-Slack-Signature": "v1=" + "0" * 64},
    ):
        status, reply = await slack.post(SLASH, body, headers)
        assert (status, reply.get("field")) == (401, "X-Slack-Signature"), reply
    assert await slack.commands() == []


@pytest.mark.parametrize("offset", [-301, 301, -86400])
async def test_a_timestamp_more_than_five_minutes_off_is_401(slack, offset):
    body = slash()
    status, reply = await slack.post(SLASH, body, signed(body, ts=TS + offset))
    assert (status, reply.get("field")) == (401, "X-Slack-Request-Timestamp"), reply
    assert await slack.commands() == []


async def test_a_request_signed_five_minutes_ago_by_the_clock_is_stale(slack):
    body = slash()
    headers = signed(body)
    slack.clock.advance(299)
    status, _ = await slack.post(SLASH, body, headers)
    assert status == 200
    body2 = slash(trigger_id="another-trigger")
    headers2 = signed(body2)
    slack.clock.advance(302)
    status, reply = await slack.post(SLASH, body2, headers2)
    assert (status, reply.get("field")) == (401, "X-Slack-Request-Timestamp")
    assert len(await slack.commands()) == 1


@pytest.mark.parametrize("ts", ["abc", "1.7e9", f"+{TS}", f"{TS}.5", "١٧٢٢٥٠٦٤٠٠", str(TS) + "0" * 20, "-1"])
async def test_a_timestamp_that_is_not_an_integer_is_401_not_500(slack, ts):
    body = slash()
    status, reply = await slack.post(SLASH, body, signed(body, ts=ts))
    assert (status, reply.get("field")) == (401, "X-Slack-Request-Timestamp"), reply
    assert await slack.commands() == []


async def test_a_body_that_is_not_utf8_is_401(slack):
    body = slash().replace(b"alice", b"al\xffice")
    # slack_sdk cannot even compute its signature over non-UTF-8: sign the bytes by hand
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{TS}:".encode() + body, hashlib.sha256).hexdigest()
    status, reply = await slack.post(
        SLASH, body, {"X-Slack-Request-Timestamp": str(TS), "X-Slack-Signature": sig}
    )
    assert (status, reply.get("field")) == (401, "X-Slack-Signature"), reply
    assert await slack.commands() == []


async def test_a_replayed_request_is_401_and_executes_once(slack_on):
    body = slash("approve r-0123456789abcdef")
    headers = signed(body)
    assert (await slack_on.post(SLASH, body, headers))[0] == 200
    status, reply = await slack_on.post(SLASH, body, headers)
    assert (status, reply.get("field")) == (401, "X-Slack-Signature"), reply
    assert "replayed" in reply["error"]
    click = form_payload(block_actions())
    click_headers = signed(click)
    assert (await slack_on.post(INTERACTIVE, click, click_headers))[0] == 200
    assert (await slack_on.post(INTERACTIVE, click, click_headers))[0] == 401
    assert len(await slack_on.commands()) == 2


async def test_slack_retries_are_answered_and_land_once(slack_on):
    body = slash("pause all")
    first = signed(body)
    assert (await slack_on.post(SLASH, body, first))[0] == 200
    # the same signed request again, as Slack retries it
    status, reply = await slack_on.post(
        SLASH, body, first | {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert status == 200 and reply["text"] == "Working on it: `pause all`"
    # a retry signed afresh (new timestamp): a new signature, the same trigger_id
    fresh = signed(body, ts=TS + 2, **{"X-Slack-Retry-Num": "2"})
    slack_on.clock.advance(2)
    assert (await slack_on.post(SLASH, body, fresh))[0] == 200
    [event] = await slack_on.commands()
    assert event.data.text == "pause all"


async def test_a_retry_of_a_request_that_never_published_publishes_it(slack):
    """The first attempt recorded the signature and died before publishing: the retry publishes."""
    body = slash("resume all")
    headers = signed(body)
    key = "slack:" + hashlib.sha256(headers["X-Slack-Signature"].encode()).hexdigest()
    await slack.runtime.store.kv.create(SEEN, key, {"at": NOW.isoformat()})
    assert (await slack.post(SLASH, body, headers))[0] == 401  # without the retry header: a replay
    assert (await slack.post(SLASH, body, headers | {"X-Slack-Retry-Num": "1"}))[0] == 200
    [event] = await slack.commands()
    assert event.data.text == "resume all"


# -- refused: who and what -----------------------------------------------------------------------


async def test_a_team_not_allowed_is_403(slack):
    body = slash(team_id="T0OTHER")
    status, reply = await slack.post(SLASH, body, signed(body))
    assert (status, reply.get("field")) == (403, "team_id")
    click = form_payload(block_actions(team={"id": "T0OTHER"}))
    status, reply = await slack.post(INTERACTIVE, click, signed(click))
    assert (status, reply.get("field")) == (403, "payload.team.id")
    other = form_payload({"type": "view_submission", "team": {"id": "T0OTHER"}})
    assert (await slack.post(INTERACTIVE, other, signed(other)))[0] == 403
    assert await slack.commands() == []


@pytest.mark.parametrize("field", ["user_id", "team_id", "trigger_id"])
async def test_a_slash_command_without_an_identity_field_is_400_naming_it(slack, field):
    body = slash(**{field: ""})
    status, reply = await slack.post(SLASH, body, signed(body))
    assert (status, reply.get("field")) == (400, field), reply
    assert await slack.commands() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (slash(user_id="U" * 201), "user_id"),
        (slash(user_name="bad\x00name"), "user_name"),
        (slash() + b"&user_id=U0MALLORY", "user_id"),
        (b"payload=" + b"%FF" * 3, "body"),
    ],
)
async def test_malformed_slash_forms_are_400_naming_the_field(slack, body, field):
    # b"%FF": the percent-escapes are ASCII, so the body is UTF-8 and signed; its form is not
    status, reply = await slack.post(SLASH, body, signed(body))
    assert (status, reply.get("field")) == (400, field), reply
    assert await slack.commands() == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ("{not json", "payload"),
        ('{"type": "block_actions", "nested": ' + "[" * 40 + "]" * 40 + "}", "payload.nested"),
        ("[1, 2]", "payload"),
        (block_actions(value="not json"), "payload.actions[0].value"),
        (block_actions(value={"run": "r-1"}), "payload.actions[0].value"),
        (block_actions(value={"run": "", "to_version": "v1"}), "payload.actions[0].value"),
        (block_actions(value=""), "payload.actions[0].value"),
        (block_actions(user={"username": "bob"}), "payload.user.id"),
        (block_actions(actions=[]), "payload.actions"),
        (block_actions(team=None, user={"id": "U0BOB"}), "payload.team.id"),
        (block_actions(response_url="https://x/" + "a" * 2100), "payload.response_url"),
    ],
)
async def test_malformed_interactive_payloads_are_400_naming_the_field(slack, payload, field):
    body = form_payload(payload)
    status, reply = await slack.post(INTERACTIVE, body, signed(body))
    assert (status, reply.get("field")) == (400, field), reply
    assert await slack.commands() == []


async def test_an_interactive_request_without_payload_is_400(slack):
    body = b"nothing=here"
    status, reply = await slack.post(INTERACTIVE, body, signed(body))
    assert (status, reply.get("field")) == (400, "payload")


# -- configuration -------------------------------------------------------------------------------


async def test_slack_not_configured_is_404(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    fleet = FLEET.split("chat:")[0]
    async with ChatServer(f"sqlite:///{tmp_path}/u.db", fleet) as server:
        body = slash()
        for path in (SLASH, INTERACTIVE):
            status, reply = await server.post(path, body, signed(body))
            assert status == 404 and "chat.slack" in reply["error"]
        assert await server.commands() == []


async def test_an_unset_signing_secret_is_503_never_unsigned_acceptance(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    async with ChatServer(f"sqlite:///{tmp_path}/u.db", FLEET) as server:
        body = slash()
        status, reply = await server.post(SLASH, body, signed(body))
        assert status == 503 and SECRET_ENV in reply["error"]
        status, _ = await server.post(SLASH, body, {})
        assert status == 503
        assert await server.commands() == []


async def test_no_secret_and_no_response_url_in_the_log(slack, log_buf):
    body = slash("status")
    await slack.post(SLASH, body, signed(body))
    await slack.post(SLASH, body, signed(body, secret="wrong-secret-also-hidden"))
    await slack.commands()
    logged = log_buf.getvalue()
    assert "chat command received" in logged and "chat request refused" in logged
    for secret in (SECRET, "secretpart", "wrong-secret-also-hidden"):
        assert secret not in logged


async def test_any_team_is_accepted_when_none_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    fleet = FLEET.replace(f", teams: [{TEAM}]", "")
    async with ChatServer(f"sqlite:///{tmp_path}/u.db", fleet) as server:
        body = slash(team_id="T0ANY")
        assert (await server.post(SLASH, body, signed(body)))[0] == 200
        [event] = await server.commands()
        assert event.data.team == "T0ANY"
