"""The Mattermost slash command edge (``/hooks/chat/mattermost``) through `upshift serve`'s app,
with the request Mattermost documents (form fields and ``Authorization: Token``); what lands on
the bus is read back by a durable recorder (tests/functions/_chat.py)."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import pytest

from events.envelope import consequence_id
from tests.functions._chat import ChatServer
from tests.functions._planning import bus_url

TOKEN = "mm-command-token-do-not-leak"
TOKEN_ENV = "UPSHIFT_TEST_MM_TOKEN"
FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: cce-1, kind: cce, cluster_id: c-1}}
chat:
  mattermost: {{token_env: {TOKEN_ENV}, response_hosts: [chat.example.internal]}}
"""
PATH = "/hooks/chat/mattermost"
RESPONSE_URL = "https://chat.example.internal/hooks/commands/xbrkb8p393gjpq5cawei7npije"
TRIGGER = "NG1kM3lyN2NqYmQxcGNyc2s0Nmo5em0xb2M6azF4NGFxZGp5MzgxM2M4NG03NzFlb2M5eG86MTU1MTIw"


def command(text: str = "status cce-1", token: str | None = TOKEN, **over: str | None) -> bytes:
    """The body Mattermost sends (developers.mattermost.com/integrate/slash-commands)."""
    fields: dict[str, str | None] = {
        "channel_id": "jux16pkewjrkfj3ehep1psxyxc",
        "channel_name": "town-square",
        "command": "/upshift",
        "response_url": RESPONSE_URL,
        "team_domain": "sre",
        "team_id": "carya1qs77bemjup96ff538snh",
        "text": text,
        "token": token,
        "trigger_id": TRIGGER,
        "user_id": "aoa1agao6t8fmx3ikt1j9w5ybw",
        "user_name": "somename",
        **over,
    }
    return urlencode({k: v for k, v in fields.items() if v is not None}).encode()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


@pytest.fixture(params=["sqlite", "nats"])
def backend(request, tmp_path) -> str:
    return bus_url(request, tmp_path)


@pytest.fixture
async def mm(tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with ChatServer(f"sqlite:///{tmp_path}/u.db", FLEET) as server:
        yield server


@pytest.fixture
async def mm_on(backend, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with ChatServer(backend, FLEET) as server:
        yield server


async def test_a_command_with_the_token_publishes_one_chat_command(mm_on):
    status, reply = await mm_on.post(PATH, command("status <cce-1>"), auth())
    assert status == 200, reply
    # Markdown code span: shown as typed, no Slack escapes
    assert reply == {"response_type": "ephemeral", "text": "Working on it: `status <cce-1>`"}
    [event] = await mm_on.commands()
    assert event.id == consequence_id("mattermost", "carya1qs77bemjup96ff538snh", TRIGGER)
    assert event.extensions == {"via": "mattermost"}
    d = event.data
    assert (d.platform, d.team, d.user, d.user_name) == (
        "mattermost",
        "carya1qs77bemjup96ff538snh",
        "aoa1agao6t8fmx3ikt1j9w5ybw",
        "somename",
    )
    assert (d.channel, d.text, d.response_url, d.trigger_id) == (
        "jux16pkewjrkfj3ehep1psxyxc",
        "status <cce-1>",
        RESPONSE_URL,
        TRIGGER,
    )


async def test_the_token_in_the_form_or_the_header_alone_is_enough(mm):
    assert (await mm.post(PATH, command(), {}))[0] == 200
    assert (await mm.post(PATH, command(token=None, trigger_id="t2"), auth()))[0] == 200
    assert len(await mm.commands()) == 2


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        (command(token=None), {}, "token"),
        (command(token="wrong"), {}, "token"),
        (command(token=""), {}, "token"),
        (command(token=None), auth("wrong"), "Authorization"),
        (command(token=None), {"Authorization": f"Bearer {TOKEN}"}, "Authorization"),
        (command(token=None), {"Authorization": "Token"}, "Authorization"),
        (command(), auth("wrong"), "Authorization"),  # both given: both must match
        (command(token="wrong"), auth(), "token"),
        (command(token=TOKEN + "x"), {}, "token"),
    ],
)
async def test_a_missing_or_wrong_token_is_401(mm, body, headers, field):
    status, reply = await mm.post(PATH, body, headers)
    assert (status, reply.get("field")) == (401, field), reply
    assert await mm.commands() == []


async def test_a_request_sent_twice_lands_once(mm_on):
    body = command("pause all")
    assert (await mm_on.post(PATH, body, auth()))[0] == 200
    assert (await mm_on.post(PATH, body, auth()))[0] == 200
    [event] = await mm_on.commands()
    assert event.data.text == "pause all"


async def test_without_trigger_id_the_id_is_a_hash_of_the_body(mm):
    body = command(trigger_id=None)
    assert (await mm.post(PATH, body, auth()))[0] == 200
    [event] = await mm.commands()
    expected = consequence_id(
        "mattermost", "carya1qs77bemjup96ff538snh", "body:" + hashlib.sha256(body).hexdigest()
    )
    assert event.id == expected and event.data.trigger_id is None


@pytest.mark.parametrize("field", ["user_id", "team_id"])
async def test_a_command_without_an_identity_field_is_400_naming_it(mm, field):
    status, reply = await mm.post(PATH, command(**{field: None}), auth())
    assert (status, reply.get("field")) == (400, field), reply
    assert await mm.commands() == []


async def test_an_empty_text_is_help_and_an_oversized_one_is_answered_unpublished(mm):
    assert (await mm.post(PATH, command(""), auth()))[0] == 200
    status, reply = await mm.post(PATH, command("x" * 2001, trigger_id="t2"), auth())
    assert status == 200 and "at most 2000" in reply["text"]
    [event] = await mm.commands()
    assert event.data.text == "help"


async def test_mattermost_not_configured_is_404_and_an_unset_token_503(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    async with ChatServer(f"sqlite:///{tmp_path}/a.db", FLEET.split("chat:")[0]) as server:
        status, reply = await server.post(PATH, command(), auth())
        assert status == 404 and "chat.mattermost" in reply["error"]
    async with ChatServer(f"sqlite:///{tmp_path}/b.db", FLEET) as server:
        status, reply = await server.post(PATH, command(), auth())
        assert status == 503 and TOKEN_ENV in reply["error"]
        assert await server.commands() == []


async def test_the_token_is_never_logged(mm, log_buf):
    await mm.post(PATH, command(), auth())
    await mm.post(PATH, command(token="wrong-token-also-hidden"), {})
    await mm.commands()
    logged = log_buf.getvalue()
    assert "chat command received" in logged and "chat request refused" in logged
    assert TOKEN not in logged and "wrong-token-also-hidden" not in logged and "xbrkb8p393" not in logged
