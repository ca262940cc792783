"""The HTTP API of `upshift serve` (``GET /api/audit``, ``POST /api/runs/{id}/approve|deny|cancel``)
and the ``via`` stamp of ``POST /events``, over the real aiohttp app.

Real parts: ``build_app`` + ``Runtime`` on a real bus and store (SQLite file; NATS JetStream where
state is involved), a real consumer recording what reaches the bus, audit entries written through
the real store. The routes' own logic (auth, 400s, the command event, the outcome → status map,
retries) is tested with ``chat_command`` unbound, so what answers is only what this test wrote;
the round trip through ``chat_command`` is at the end.
"""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from events import Event, T
from events.catalog import ChatCommand
from events.codec import to_binary_http, to_structured_http
from events.envelope import consequence_id
from shared.bus import Subscription, open_bus
from shared.domain.fleet import parse_fleet
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.runtime.server import build_app
from shared.store import open_store
from tests.functions._planning import Harness, bus_url, fleet_from, utc
from tests.helpers import eventually

TOKENS = {
    "board": ("UPSHIFT_T_API_BOARD", "board-token-value-api-1a2b"),
    "bot": ("UPSHIFT_T_API_BOT", "bot-token-value-api-3c4d"),
    "chat": ("UPSHIFT_T_API_CHAT", "chat-token-value-api-5e6f"),
}
FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: sr-1, kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: 5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17}}
auth:
  tokens:
    - {{name: board, token_env: {TOKENS["board"][0]}, role: viewer}}
    - {{name: bot, token_env: {TOKENS["bot"][0]}, role: operator, publish: [chat.command, echo]}}
    - {{name: chat, token_env: {TOKENS["chat"][0]}, role: approver, publish: [chat.command]}}
"""
RUN = "r0123456789abcde"
OTHER_RUN = "rfedcba987654321"


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][1]}"}


@pytest.fixture
def url(request: pytest.FixtureRequest, tmp_path) -> str:
    """SQLite unless a test parametrizes it (indirectly) with "nats"."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{tmp_path}/u.db"
    return bus_url(request, tmp_path)


both = pytest.mark.parametrize("url", ["sqlite", "nats"], indirect=True)


class Served:
    def __init__(self, client: TestClient, runtime: Runtime, seen: list[Event]) -> None:
        self.client, self.runtime, self.seen = client, runtime, seen

    def published(self) -> int:
        """chat.command rows on the SQLite bus (what the recorder may not have seen yet too)."""
        return self.runtime.bus.conn.execute(
            "SELECT COUNT(*) FROM bus_events WHERE type = ?", (T.CHAT_COMMAND,)
        ).fetchone()[0]


@pytest.fixture
async def serve(url, monkeypatch, log_buf):
    """``serve(only=…, wait=…)`` → :class:`Served`: the app over a runtime binding ``only`` (default:
    ``echo`` alone, so no ``chat_command`` answers) plus a consumer recording every chat.command."""
    for env, value in TOKENS.values():
        monkeypatch.setenv(env, value)
    opened: list[Served] = []

    async def start(only: list[str] | None = ["echo"], wait: float = 0.3, fleet: str = FLEET) -> Served:  # noqa: B006
        runtime = Runtime(
            load_manifest(), open_bus(url), open_store(url), fleet=parse_fleet(fleet), only=only
        )
        seen: list[Event] = []

        async def record(event: Event) -> list:
            seen.append(event)
            return []

        runtime.bus.subscribe(Subscription("api_test_recorder", T.CHAT_COMMAND, {}, record))
        await runtime.start()
        client = TestClient(TestServer(build_app(runtime, command_wait_s=wait)))
        await client.start_server()
        opened.append(Served(client, runtime, seen))
        return opened[-1]

    yield start
    for s in opened:
        await s.client.close()
        await s.runtime.stop()
    for _, value in TOKENS.values():
        assert value not in log_buf.getvalue()


async def refused(r, status: int, field: str) -> dict:
    text = await r.text()
    assert r.status == status, text
    payload = json.loads(text)
    assert payload["field"] == field, payload
    assert payload["error"] and "Traceback" not in text
    return payload


def command(text: str = "help", **data) -> Event:
    return Event(type=T.CHAT_COMMAND, data=ChatCommand(user="U024BE7LH", text=text, **data))


# -- POST /events: who published it is the token ------------------------------------------------


@both
@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_a_chat_command_claiming_to_come_from_slack_arrives_via_its_token(serve, mode):
    s = await serve()
    claimed = command("approve r0123456789abcde", team="T0SRE").model_copy(
        update={"extensions": {"via": "slack"}}
    )
    headers, body = (to_binary_http if mode == "binary" else to_structured_http)(claimed)
    assert ("ce-via" in headers) if mode == "binary" else (json.loads(body)["via"] == "slack")
    r = await s.client.post("/events", data=body, headers={**headers, **bearer("bot")})
    assert r.status == 202, await r.text()
    await eventually(lambda: len(s.seen) == 1)
    assert s.seen[0].id == claimed.id
    assert s.seen[0].extensions == {"via": "token:bot"}
    assert s.seen[0].data == claimed.data


async def test_an_event_without_via_gets_its_tokens(serve):
    s = await serve()
    headers, body = to_binary_http(command())
    r = await s.client.post("/events", data=body, headers={**headers, **bearer("chat")})
    assert r.status == 202, await r.text()
    await eventually(lambda: len(s.seen) == 1)
    assert s.seen[0].extensions["via"] == "token:chat"


# -- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/audit"), ("POST", f"/api/runs/{RUN}/approve"), ("POST", "/api/runs/not-a-run/deny")],
)
async def test_no_valid_token_is_401_with_a_challenge_and_publishes_nothing(serve, auth, method, path):
    s = await serve()
    r = await s.client.request(method, path, json={"reason": "no"}, headers=auth)
    await refused(r, 401, "Authorization")
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="upshift"')
    assert s.published() == 0


# -- GET /api/audit --------------------------------------------------------------------------------


def entry(id_: str, at: str, run: str | None, outcome: str = "ok") -> dict:
    return {
        "id": id_,
        "at": at,
        "platform": "api",
        "actor": "token:chat",
        "via": "token:chat",
        "user": "chat",
        "command": "approve" if run else "help",
        "text": f"approve {run}" if run else "help",
        "run": run,
        "scope": None,
        "outcome": outcome,
        "reply": f"reply {id_}",
    }


@both
async def test_the_audit_trail_for_any_token_oldest_first_by_run_and_limit(serve):
    s = await serve()
    recorded = [
        entry("c2", "2026-11-21T02:00:02+00:00", RUN),
        entry("c1", "2026-11-21T02:00:01+00:00", None),
        entry("c3", "2026-11-21T02:00:03+00:00", OTHER_RUN, "refused"),
        entry("c4", "2026-11-21T02:00:04+00:00", RUN, "invalid"),
    ]
    # as stored (the store may add its own fields)
    by_id = {e["id"]: await s.runtime.store.audit.record(e) for e in recorded}

    async def ids(query: str = "") -> list[str]:
        r = await s.client.get(f"/api/audit{query}", headers=bearer("board"))  # a viewer's token
        assert r.status == 200, await r.text()
        entries = (await r.json())["entries"]
        for e in entries:
            assert e == by_id[e["id"]]
        return [e["id"] for e in entries]

    assert await ids() == ["c1", "c2", "c3", "c4"]
    assert await ids(f"?run={RUN}") == ["c2", "c4"]
    assert await ids("?limit=2") == ["c3", "c4"]
    assert await ids(f"?run={RUN}&limit=1") == ["c4"]
    assert await ids("?run=r000000000000000") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=abc", "limit"),
        ("?limit=1.5", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=%D9%A1", "limit"),  # an Arabic-Indic digit one: a digit, not a number we take
        ("?limit=", "limit"),
        ("?run=sr-1", "run"),
        ("?run=R0123456789ABCDE", "run"),
        ("?run=", "run"),
        ("?colour=red", "colour"),
    ],
)
async def test_a_bad_audit_query_is_400_naming_the_parameter(serve, query, field):
    s = await serve()
    await refused(await s.client.get(f"/api/audit{query}", headers=bearer("board")), 400, field)


# -- POST /api/runs/{id}/…: what the route refuses ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/runs/sr-1/approve", {}, "id"),
        ("/api/runs/r0123456789abcdef/cancel", {}, "id"),  # one digit too many
        (f"/api/runs/{RUN}/approve", {"coment": "typo", "colour": "x"}, "colour, coment"),
        (f"/api/runs/{RUN}/deny", {}, "reason"),
        (f"/api/runs/{RUN}/deny", {"reason": 5}, "reason"),
        (f"/api/runs/{RUN}/deny", {"reason": "   "}, "reason"),  # the grammar: a denial needs a reason
        (f"/api/runs/{RUN}/approve", {"comment": "ok\x07"}, "comment"),  # a control character
        (f"/api/runs/{RUN}/approve", {"comment": "x" * 2000}, "comment"),  # the text over its limit
        (f"/api/runs/{RUN}/approve", {"user": "u" * 201}, "user"),
        (f"/api/runs/{RUN}/approve", {"user": ["alice"]}, "user"),
        (f"/api/runs/{RUN}/cancel", {"reason": {"why": 1}}, "reason"),
        (f"/api/runs/{RUN}/cancel", ["reason"], "body"),
    ],
)
async def test_a_bad_command_request_is_400_naming_the_field_and_publishes_nothing(serve, path, body, field):
    s = await serve()
    r = await s.client.post(path, json=body, headers=bearer("chat"))
    payload = await refused(r, 400, field)
    if field in ("comment",) or (field == "reason" and body == {"reason": "   "}):
        assert payload["usage"].startswith("/upshift "), payload  # the grammar's refusal carries its usage
    assert s.published() == 0


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b'{"comment": ' + b"[" * 40 + b"]" * 40 + b"}", "comment"),
        (b"\xff\xfe", "body"),
    ],
)
async def test_a_body_that_is_no_bounded_json_is_400(serve, raw, field):
    s = await serve()
    r = await s.client.post(f"/api/runs/{RUN}/approve", data=raw, headers=bearer("chat"))
    await refused(r, 400, field)
    assert s.published() == 0


@pytest.mark.parametrize("key", ["k" * 65, "a\tb", ""])
async def test_a_bad_idempotency_key_is_400_naming_the_header(serve, key):
    s = await serve()
    r = await s.client.post(
        f"/api/runs/{RUN}/approve", json={}, headers={**bearer("chat"), "Idempotency-Key": key}
    )
    await refused(r, 400, "Idempotency-Key")
    assert s.published() == 0


# -- POST /api/runs/{id}/…: the command it publishes ---------------------------------------------------


@both
@pytest.mark.parametrize(
    ("action", "body", "text", "user"),
    [
        ("approve", {}, f"approve {RUN}", "chat"),
        (
            "approve",
            {"comment": "canary  looks\ngood", "user": "alice"},
            f"approve {RUN} canary  looks\ngood",
            "alice",
        ),
        ("deny", {"reason": "not this week"}, f"deny {RUN} not this week", "chat"),
        ("cancel", {"reason": "superseded"}, f"cancel {RUN}", "chat"),
        ("cancel", None, f"cancel {RUN}", "chat"),  # no body at all
    ],
)
async def test_a_command_is_published_as_chat_command_via_the_token_and_accepted_unanswered(
    serve, action, body, text, user
):
    s = await serve()
    kwargs = {"json": body} if body is not None else {}
    r = await s.client.post(f"/api/runs/{RUN}/{action}", headers=bearer("chat"), **kwargs)
    assert r.status == 202, await r.text()
    answer = await r.json()
    assert answer["status"] == "accepted"
    await eventually(lambda: len(s.seen) == 1)
    event = s.seen[0]
    assert event.id == answer["id"]
    assert event.type == T.CHAT_COMMAND
    assert event.extensions == {"via": "token:chat"}
    assert (event.data.platform, event.data.channel, event.data.user, event.data.text) == (
        "api",
        "api",
        user,
        text,
    )
    assert event.data.response_url is None


@both
async def test_an_idempotency_key_makes_a_retry_the_same_command(serve):
    s = await serve()
    post = lambda key, token="chat": s.client.post(  # noqa: E731
        f"/api/runs/{RUN}/approve", json={}, headers={**bearer(token), "Idempotency-Key": key}
    )
    first, again = await (await post("k-1")).json(), await (await post("k-1")).json()
    other_key, other_token = await (await post("k-2")).json(), await (await post("k-1", "bot")).json()
    assert first["id"] == again["id"] == consequence_id("api", "chat", "k-1")
    assert len({first["id"], other_key["id"], other_token["id"]}) == 3
    # the retry was dropped by the bus: three commands, not four
    await eventually(lambda: len(s.seen) == 3)
    assert sorted(e.id for e in s.seen) == sorted([first["id"], other_key["id"], other_token["id"]])


async def test_without_an_idempotency_key_every_request_is_a_new_command(serve):
    s = await serve()
    ids = {
        (await (await s.client.post(f"/api/runs/{RUN}/cancel", headers=bearer("bot"))).json())["id"]
        for _ in range(2)
    }
    assert len(ids) == 2
    assert s.published() == 2


# -- the answer is the command's audit entry ---------------------------------------------------------


@both
@pytest.mark.parametrize(
    ("outcome", "status"), [("ok", 200), ("refused", 403), ("invalid", 409), ("error", 502)]
)
async def test_the_answer_is_the_commands_audit_entry(serve, outcome, status):
    s = await serve()
    # the entry chat_command would record for this command (the retry id is known in advance)
    id_ = consequence_id("api", "chat", "k-1")
    written = {**entry(id_, "2026-11-21T02:00:00+00:00", RUN, outcome), "text": f"approve {RUN} fine"}
    recorded = await s.runtime.store.audit.record(written)
    r = await s.client.post(
        f"/api/runs/{RUN}/approve",
        json={"comment": "fine"},
        headers={**bearer("chat"), "Idempotency-Key": "k-1"},
    )
    assert r.status == status, await r.text()
    assert await r.json() == {"id": id_, "outcome": outcome, "reply": recorded["reply"], "entry": recorded}


async def test_a_key_reused_for_another_command_is_422(serve):
    s = await serve()
    id_ = consequence_id("api", "chat", "k-1")
    await s.runtime.store.audit.record(entry(id_, "2026-11-21T02:00:00+00:00", RUN))  # "approve <RUN>"
    r = await s.client.post(
        f"/api/runs/{RUN}/deny", json={"reason": "no"}, headers={**bearer("chat"), "Idempotency-Key": "k-1"}
    )
    await refused(r, 422, "Idempotency-Key")


# -- through chat_command: the answer is what it decided ----------------------------------------------


@both
async def test_commands_through_chat_command_answer_its_outcome_and_the_audit_shows_them(serve):
    s = await serve(only=None, wait=30.0)  # the whole manifest: chat_command answers
    # an approver's token, a run the ledger does not hold: the command does not apply
    r = await s.client.post(f"/api/runs/{RUN}/approve", json={"user": "alice"}, headers=bearer("chat"))
    assert r.status == 409, await r.text()
    approve = await r.json()
    assert approve["outcome"] == "invalid" and RUN in approve["reply"]
    assert approve["entry"]["actor"] == "token:chat" and approve["entry"]["platform"] == "api"
    # a viewer's token may not approve (chat_command decides, from the token's role)
    r = await s.client.post(f"/api/runs/{RUN}/deny", json={"reason": "no"}, headers=bearer("board"))
    assert r.status == 403, await r.text()
    deny = await r.json()
    assert deny["outcome"] == "refused" and deny["reply"]
    r = await s.client.post(f"/api/runs/{RUN}/cancel", headers=bearer("bot"))
    assert r.status == 409, await r.text()
    cancel = await r.json()

    r = await s.client.get("/api/audit", headers=bearer("board"))
    trail = {e["id"]: e for e in (await r.json())["entries"]}
    assert {i: (e["text"], e["via"], e["outcome"]) for i, e in trail.items()} == {
        approve["id"]: (f"approve {RUN}", "token:chat", "invalid"),
        deny["id"]: (f"deny {RUN} no", "token:board", "refused"),
        cancel["id"]: (f"cancel {RUN}", "token:bot", "invalid"),
    }
    assert trail[approve["id"]] == approve["entry"] and trail[cancel["id"]] == cancel["entry"]
    assert trail[approve["id"]]["on_behalf_of"] == "alice"


APPROVAL_FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
windows:
  night: {{rrule: "FREQ=DAILY;BYHOUR=2", duration: 2h, timezone: Europe/Berlin, cutoff: 30m, concurrency: 3}}
waves: {{bake: 30m, approval: {{0: {{required: true}}}}}}
targets:
  - {{name: cce-a, kind: cce, cluster_id: c0, window: night, wave: 0, version: v1.28.0-r0}}
  - {{name: cce-b, kind: cce, cluster_id: c1, window: night, wave: 0, version: v1.28.0-r0}}
  - {{name: cce-c, kind: cce, cluster_id: c2, window: night, wave: 0, version: v1.28.0-r0}}
auth:
  tokens:
    - {{name: board, token_env: {TOKENS["board"][0]}, role: viewer}}
    - {{name: chat, token_env: {TOKENS["chat"][0]}, role: approver, publish: [chat.command]}}
"""


@both
async def test_approve_deny_and_cancel_round_trip_on_runs_awaiting_approval(url, monkeypatch):
    for env, value in TOKENS.values():
        monkeypatch.setenv(env, value)
    functions = ("plan_upgrades", "start_upgrades", "window_clock", "chat_command")
    async with Harness(url, fleet_from(APPROVAL_FLEET), utc("2026-06-09T12:00:00"), functions=functions) as h:
        client = TestClient(TestServer(build_app(h.runtime, command_wait_s=30.0)))
        await client.start_server()
        try:
            await h.release("cce", "v1.29.0-r0")
            await h.at(utc("2026-06-10T00:00:00"))  # the window opens: every run waits for approval
            requested = {e.data.target: e.data.run for e in h.events(T.APPROVAL_REQUESTED)}
            assert sorted(requested) == ["cce-a", "cce-b", "cce-c"]
            a, b, c = requested["cce-a"], requested["cce-b"], requested["cce-c"]

            # a viewer may not; the run still waits
            r = await client.post(f"/api/runs/{a}/approve", json={}, headers=bearer("board"))
            assert r.status == 403, await r.text()
            assert (await h.run(a))["state"] == "awaiting_approval"

            r = await client.post(
                f"/api/runs/{a}/approve",
                json={"comment": "canary is green", "user": "alice"},
                headers=bearer("chat"),
            )
            assert r.status == 200, await r.text()
            approved = await r.json()
            assert (
                approved["outcome"] == "ok"
                and "approved" in approved["reply"]
                and "canary is green" in approved["reply"]
            )
            await h.settle()
            assert [e.data.run for e in h.events(T.RUN_APPROVED)] == [a]

            r = await client.post(
                f"/api/runs/{b}/deny", json={"reason": "not this week"}, headers=bearer("chat")
            )
            assert r.status == 200, await r.text()
            assert (await h.run(b))["state"] == "denied"
            r = await client.post(f"/api/runs/{c}/cancel", headers=bearer("chat"))
            assert r.status == 200, await r.text()
            await h.settle()
            assert (await h.run(c))["state"] == "cancelled"

            # approving again: the run no longer waits
            r = await client.post(f"/api/runs/{b}/approve", json={}, headers=bearer("chat"))
            assert r.status == 409, await r.text()

            r = await client.get("/api/audit", headers=bearer("board"))
            trail = (await r.json())["entries"]
            assert [(e["command"], e["run"], e["outcome"]) for e in trail] == [
                ("approve", a, "refused"),
                ("approve", a, "ok"),
                ("deny", b, "ok"),
                ("cancel", c, "ok"),
                ("approve", b, "invalid"),
            ]
        finally:
            await client.close()
