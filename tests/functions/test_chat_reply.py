"""chat_reply on a real SQLite bus, posting to a loopback aiohttp receiver that records what it gets."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from events import Event, T
from events.catalog import ChatReply
from functions.chat_reply import BUCKET, allowed
from shared.bus import open_bus
from shared.domain.fleet import parse_fleet
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.store import open_store
from tests.helpers import eventually


class Receiver:
    """A response_url endpoint at /hooks/<token>: records each POST; ``answers`` is what it
    answers next (status codes, consumed in order; 200 once they run out)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.attempts = 0
        self.answers: list[int] = []
        app = web.Application()
        app.router.add_post("/hooks/{token}", self._post)
        self.server = TestServer(app, host="127.0.0.1")

    async def _post(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.json()
        status = self.answers.pop(0) if self.answers else 200
        if status == 200:
            self.posts.append((request.match_info["token"], body))
        return web.Response(status=status, text="ok" if status == 200 else "no")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def url(self, token: str, host: str | None = None) -> str:
        return f"http://{host or self.host}/hooks/{token}"


def _fleet(slack_hosts: list[str], mm_hosts: list[str]):
    return parse_fleet(
        f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: cce-1, kind: cce, cluster_id: c-1}}
chat:
  slack: {{signing_secret_env: UNUSED_SLACK_SECRET, response_hosts: [{", ".join(slack_hosts)}]}}
  mattermost: {{token_env: UNUSED_MM_TOKEN, response_hosts: [{", ".join(mm_hosts)}]}}
"""
    )


@pytest.fixture
async def receiver():
    r = Receiver()
    await r.server.start_server()
    yield r
    await r.server.close()


@pytest.fixture
async def runtime(tmp_path, receiver):
    url = f"sqlite:///{tmp_path}/u.db"
    fleet = _fleet([receiver.host, "hooks.slack.com"], [receiver.host])
    rt = Runtime(load_manifest(), open_bus(url), open_store(url), fleet=fleet, only=["chat_reply"])
    await rt.start()
    yield rt
    await rt.stop()


def reply(url: str, platform: str = "slack", **over) -> Event:
    data = ChatReply(platform=platform, response_url=url, text=over.pop("text", "cce-1: idle"), **over)
    return Event(type=T.CHAT_REPLY, data=data)


async def test_a_reply_is_posted_once_with_slacks_body(runtime, receiver):
    ephemeral = reply(receiver.url("tok1"))
    public = reply(
        receiver.url("tok2"), platform="mattermost", text="approved", ephemeral=False, replace_original=True
    )
    await runtime.bus.publish(ephemeral)
    await runtime.bus.publish(public)
    await eventually(lambda: len(receiver.posts) == 2)
    got = dict(receiver.posts)
    assert got["tok1"] == {"text": "cce-1: idle", "response_type": "ephemeral", "replace_original": False}
    assert got["tok2"] == {"text": "approved", "response_type": "in_channel", "replace_original": True}
    entry = await runtime.store.kv.get(BUCKET, ephemeral.id)
    assert entry is not None and entry.value["outcome"] == "delivered"


async def test_a_redelivery_posts_nothing_more(runtime, receiver):
    event = reply(receiver.url("tok"))
    fn, ctx = runtime.functions["chat_reply"].function, runtime.context("chat_reply")
    assert await fn(event, ctx) == []
    assert await fn(event, ctx) == []  # the bus handing the same event over again
    await runtime.bus.publish(event)
    await runtime.wait_idle()
    assert receiver.attempts == 1


async def test_urls_not_allowed_are_not_posted(runtime, receiver, log_buf):
    refused = [
        reply(receiver.url("a", host=f"localhost:{receiver.server.port}")),  # loopback, not listed
        reply(receiver.url("b"), platform="bot"),  # no allow-list for bots
        reply(receiver.url("c"), platform="api"),
        reply(f"https://user:pw@{receiver.host}/hooks/d"),  # user info
        reply(f"ftp://{receiver.host}/hooks/e"),
    ]
    for event in refused:
        await runtime.bus.publish(event)
    await runtime.wait_idle()
    assert receiver.attempts == 0
    for event in refused:  # done with, not retried
        assert await runtime.store.kv.get(BUCKET, event.id) is None
    assert "not an allowed host" in log_buf.getvalue()
    await runtime.bus.publish(reply(receiver.url("ok")))
    await eventually(lambda: len(receiver.posts) == 1)
    assert receiver.posts[0][0] == "ok"


async def test_a_failing_platform_is_retried_until_it_takes_the_reply(runtime, receiver):
    receiver.answers = [500, 503]
    await runtime.bus.publish(reply(receiver.url("tok")))
    await eventually(lambda: len(receiver.posts) == 1)
    await runtime.wait_idle()
    assert receiver.attempts == 3 and len(receiver.posts) == 1


@pytest.mark.parametrize("status", [404, 410])
async def test_an_expired_response_url_is_given_up(runtime, receiver, status):
    receiver.answers = [status]
    event = reply(receiver.url("tok"))
    await runtime.bus.publish(event)
    await eventually(lambda: receiver.attempts == 1)
    await runtime.wait_idle()
    assert receiver.attempts == 1 and receiver.posts == []
    entry = await runtime.store.kv.get(BUCKET, event.id)
    assert entry is not None and entry.value["outcome"] == "given up"


async def test_the_url_is_never_logged(runtime, receiver, log_buf):
    receiver.answers = [500]
    await runtime.bus.publish(reply(receiver.url("bearer-part-of-the-url")))
    await runtime.bus.publish(reply("https://evil.example/hooks/another-bearer-part"))
    await eventually(lambda: len(receiver.posts) == 1)
    await runtime.wait_idle()
    logged = log_buf.getvalue()
    assert receiver.host in logged and "evil.example" in logged
    assert "bearer-part-of-the-url" not in logged and "another-bearer-part" not in logged


@pytest.mark.parametrize(
    ("platform", "url", "host"),
    [
        ("slack", "https://hooks.slack.com/commands/T0/1/x", "hooks.slack.com"),
        ("slack", "https://HOOKS.slack.com:443/commands/T0/1/x", "hooks.slack.com"),
        ("slack", "https://hooks.slack.com:8443/commands/T0/1/x", None),
        ("slack", "http://hooks.slack.com/commands/T0/1/x", None),  # plain http off loopback
        ("slack", "https://hooks.slack.com.evil.example/x", None),
        ("slack", "https://evil.example/?u=https://hooks.slack.com/", None),
        ("slack", "https://hooks.slack.com@evil.example/x", None),
        ("slack", "https://hooks.slack.com:99999/x", None),
        ("slack", "https://hooks.slack.com:port/x", None),
        ("slack", "http://127.0.0.1:8065/hooks/x", "127.0.0.1:8065"),
        ("slack", "http://127.0.0.1:8066/hooks/x", None),
        ("mattermost", "https://chat.example.internal/hooks/commands/x", "chat.example.internal"),
        ("mattermost", "http://chat.example.internal/hooks/commands/x", None),
        ("mattermost", "https://hooks.slack.com/commands/T0/1/x", None),  # Slack's host is Slack's
        ("bot", "https://hooks.slack.com/commands/T0/1/x", None),
        ("slack", "not a url", None),
    ],
)
def test_allowed(platform, url, host):
    fleet = _fleet(["hooks.slack.com", "127.0.0.1:8065"], ["chat.example.internal"])
    assert allowed(fleet, platform, url) == host


def test_nothing_is_allowed_without_a_chat_block():
    fleet = parse_fleet(
        "clouds: {huawei: {region: ap-southeast-1, project_id: p1}}\n"
        "targets: [{name: cce-1, kind: cce, cluster_id: c-1}]\n"
    )
    assert allowed(fleet, "slack", "https://hooks.slack.com/commands/T0/1/x") is None
    assert allowed(None, "slack", "https://hooks.slack.com/commands/T0/1/x") is None
