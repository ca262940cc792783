"""notify on a real SQLite bus, posting to a loopback webhook receiver that records what it gets."""

from __future__ import annotations

from collections import defaultdict

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from events import Event, T
from events.catalog import (
    ApprovalBinding,
    ApprovalRequested,
    RunDenied,
    StageFailed,
    UpgradeCancelled,
    UpgradeFailed,
    UpgradeHalted,
    UpgradeSucceeded,
)
from shared.bus import open_bus
from shared.clouds.sessions import close_sessions
from shared.domain.fleet import parse_fleet
from shared.runtime.host import Runtime
from shared.runtime.manifest import Manifest
from shared.store import open_store
from simulator.natsd import free_port

TYPES = (
    T.UPGRADE_SUCCEEDED,
    T.UPGRADE_FAILED,
    T.UPGRADE_HALTED,
    T.STAGE_FAILED,
    T.APPROVAL_REQUESTED,
    T.RUN_APPROVED,
    T.RUN_DENIED,
    T.UPGRADE_CANCELLED,
)


def _manifest(max_attempts: int = 5) -> Manifest:
    return Manifest.model_validate(
        {
            "service": "t",
            "functions": {
                "notify": {
                    "handler": "functions.notify.notify",
                    "events": [{"event": {"type": t, "max_attempts": max_attempts}} for t in TYPES],
                }
            },
        }
    )


class Receiver:
    """Incoming webhooks at /services/<token>: records each POST; ``fail[token]`` answers 500 that many times."""

    def __init__(self) -> None:
        self.posts: dict[str, list[dict]] = defaultdict(list)
        self.fail: dict[str, int] = {}
        app = web.Application()
        app.router.add_post("/services/{token}", self._post)
        self.server = TestServer(app)

    async def _post(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.json()
        if self.fail.get(token, 0):
            self.fail[token] -= 1
            return web.Response(status=500, text="invalid_payload")
        self.posts[token].append(body)
        return web.Response(text="ok")

    def url(self, token: str) -> str:
        return str(self.server.make_url(f"/services/{token}"))


@pytest.fixture
async def receiver():
    r = Receiver()
    await r.server.start_server()
    yield r
    await r.server.close()


@pytest.fixture
async def make_runtime(tmp_path):
    made: list[Runtime] = []

    async def make(envs: list[str], max_attempts: int = 5) -> Runtime:
        fleet = parse_fleet(
            f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: cce-1, kind: cce, cluster_id: c-1}}
notify:
  webhook_envs: [{", ".join(envs)}]
"""
        )
        url = f"sqlite:///{tmp_path}/u.db"
        runtime = Runtime(_manifest(max_attempts), open_bus(url), open_store(url), fleet=fleet)
        await runtime.start()
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.stop()
    await close_sessions()


def _succeeded() -> Event:
    data = UpgradeSucceeded(target="cce-1", kind="cce", from_version="v1.28.4-r0", to_version="v1.29.8-r0")
    return Event(type=T.UPGRADE_SUCCEEDED, data=data, target="cce-1", kind="cce")


def _failed() -> Event:
    data = UpgradeFailed(
        target="cce-1",
        kind="cce",
        from_version="v1.28.4-r0",
        to_version="v1.29.8-r0",
        stage="upgrade",
        code="CCE.01400001",
        message="node pool <np-1> is not ready & busy",
    )
    return Event(type=T.UPGRADE_FAILED, data=data, target="cce-1", kind="cce")


def _halted() -> Event:
    data = UpgradeHalted(window="sat-night", wave=0, reason="canary failed", failed_target="cce-1")
    return Event(type=T.UPGRADE_HALTED, data=data)


def _stage_failed() -> Event:
    data = StageFailed(
        target="cce-1",
        kind="cce",
        stage="precheck",
        to_version="v1.29.8-r0",
        code="X" * 10,
        message="m" * 1000,
    )
    return Event(type=T.STAGE_FAILED, data=data, target="cce-1", kind="cce", stage="precheck")


async def test_each_event_is_posted_once_to_every_webhook(receiver, make_runtime, monkeypatch):
    monkeypatch.setenv("UPSHIFT_TEST_HOOK_A", receiver.url("T000-B000-aaaa"))
    monkeypatch.setenv("UPSHIFT_TEST_HOOK_B", receiver.url("T000-B000-bbbb"))
    runtime = await make_runtime(["UPSHIFT_TEST_HOOK_A", "UPSHIFT_TEST_HOOK_B"])
    for event in (_succeeded(), _failed(), _halted(), _stage_failed()):
        await runtime.bus.publish(event)
    await runtime.wait_idle()

    assert receiver.posts["T000-B000-aaaa"] == receiver.posts["T000-B000-bbbb"]
    texts = [p["text"] for p in receiver.posts["T000-B000-aaaa"]]
    assert len(texts) == 4
    assert all(set(p) == {"text"} for p in receiver.posts["T000-B000-aaaa"])
    by_start = {t.split()[0]: t for t in texts}
    assert (
        by_start[":white_check_mark:"] == ":white_check_mark: *cce-1* (cce) upgraded v1.28.4-r0 → v1.29.8-r0"
    )
    # vendor text is escaped for Slack, so '<np-1>' cannot become a link
    assert "node pool &lt;np-1&gt; is not ready &amp; busy" in by_start[":x:"]
    assert "CCE.01400001" in by_start[":x:"] and "at upgrade" in by_start[":x:"]
    assert "wave 0 in window sat-night halted (cce-1 failed): canary failed" in by_start[":octagonal_sign:"]
    assert len(by_start[":warning:"]) < 500  # a long vendor message is shortened


async def test_a_failing_webhook_is_retried_and_the_others_not_posted_again(
    receiver, make_runtime, monkeypatch
):
    monkeypatch.setenv("UPSHIFT_TEST_HOOK_A", receiver.url("good"))
    monkeypatch.setenv("UPSHIFT_TEST_HOOK_B", receiver.url("flaky"))
    receiver.fail["flaky"] = 2
    runtime = await make_runtime(["UPSHIFT_TEST_HOOK_A", "UPSHIFT_TEST_HOOK_B"])
    await runtime.bus.publish(_succeeded())
    await runtime.wait_idle()
    assert len(receiver.posts["good"]) == 1
    assert len(receiver.posts["flaky"]) == 1
    assert receiver.fail["flaky"] == 0
    assert await runtime.bus.dead_letters() == []


async def test_webhook_urls_never_reach_logs_or_dead_letters(receiver, make_runtime, monkeypatch, log_buf):
    token = "T000-B000-secret-token-do-not-leak"
    dead_url = f"http://127.0.0.1:{free_port()}/services/{token}-dead"
    monkeypatch.setenv("UPSHIFT_TEST_HOOK_A", receiver.url(token))
    monkeypatch.setenv("UPSHIFT_TEST_HOOK_DEAD", dead_url)
    receiver.fail[token] = 100
    runtime = await make_runtime(["UPSHIFT_TEST_HOOK_A", "UPSHIFT_TEST_HOOK_DEAD"], max_attempts=2)
    await runtime.bus.publish(_failed())
    await runtime.wait_idle()

    [dead] = await runtime.bus.dead_letters()
    assert "UPSHIFT_TEST_HOOK_A" in dead.error and "UPSHIFT_TEST_HOOK_DEAD" in dead.error
    logs = log_buf.getvalue()
    assert "notify webhook refused" in logs and "notify webhook unreachable" in logs
    for text in (logs, dead.error):
        assert token not in text
        assert "127.0.0.1" not in text


async def test_an_unset_variable_is_skipped_and_the_others_still_posted(
    receiver, make_runtime, monkeypatch, log_buf
):
    monkeypatch.setenv("UPSHIFT_TEST_HOOK_A", receiver.url("a"))
    monkeypatch.delenv("UPSHIFT_TEST_HOOK_UNSET", raising=False)
    runtime = await make_runtime(["UPSHIFT_TEST_HOOK_UNSET", "UPSHIFT_TEST_HOOK_A"])
    await runtime.bus.publish(_halted())
    await runtime.wait_idle()
    assert len(receiver.posts["a"]) == 1
    assert await runtime.bus.dead_letters() == []
    assert "UPSHIFT_TEST_HOOK_UNSET" in log_buf.getvalue()


async def test_no_webhooks_configured_is_a_no_op(make_runtime):
    runtime = await make_runtime([])
    await runtime.bus.publish(_succeeded())
    await runtime.wait_idle()
    assert await runtime.bus.dead_letters() == []


async def test_an_approval_request_carries_buttons_bound_to_it(receiver, make_runtime, monkeypatch):
    monkeypatch.setenv("UPSHIFT_TEST_HOOK_A", receiver.url("a"))
    runtime = await make_runtime(["UPSHIFT_TEST_HOOK_A"])
    data = ApprovalRequested(
        run="r0123456789abcde",
        target="cce-1",
        kind="cce",
        from_version="v1.28.4-r0",
        to_version="v1.29.8-r0",
        window="sat-night",
        wave=0,
        occurrence="2026-06-13T00:00:00+00:00",
        expires_at="2026-06-13T04:00:00+00:00",
    )
    await runtime.bus.publish(Event(type=T.APPROVAL_REQUESTED, data=data, runid=data.run))
    await runtime.wait_idle()
    [post] = receiver.posts["a"]
    assert "/upshift approve r0123456789abcde" in post["text"]
    buttons = post["blocks"][1]["elements"]
    assert [b["action_id"] for b in buttons] == ["upshift.approve", "upshift.deny"]
    for b in buttons:
        bound = ApprovalBinding.model_validate_json(b["value"])
        assert bound == ApprovalBinding(
            run="r0123456789abcde", to_version="v1.29.8-r0", occurrence="2026-06-13T00:00:00+00:00"
        )


async def test_an_outcome_names_who_approved_and_operator_actions_are_posted(
    receiver, make_runtime, monkeypatch
):
    monkeypatch.setenv("UPSHIFT_TEST_HOOK_A", receiver.url("a"))
    runtime = await make_runtime(["UPSHIFT_TEST_HOOK_A"])
    rid = "r0123456789abcde"
    await runtime.store.ledger.open_run(rid, target="cce-1", kind="cce", to_version="v1.29.8-r0")
    await runtime.store.ledger.approve_run(rid, ["slack:T0SRE/U024BE7LH"])
    done = _succeeded().model_copy(update={"runid": rid})
    await runtime.bus.publish(done)
    await runtime.bus.publish(
        Event(
            type=T.RUN_DENIED,
            data=RunDenied(
                run="r1", target="cce-1", to_version="v2", by="slack:T0SRE/U1", reason="<bad> notes"
            ),
        )
    )
    await runtime.bus.publish(
        Event(
            type=T.UPGRADE_CANCELLED,
            data=UpgradeCancelled(run="r2", target="cce-1", kind="cce", to_version="v3", by="cli:alice"),
        )
    )
    await runtime.wait_idle()
    texts = sorted(p["text"] for p in receiver.posts["a"])
    assert any(
        t.startswith(":white_check_mark:") and "(approved by slack:T0SRE/U024BE7LH)" in t for t in texts
    )
    assert any("denied by slack:T0SRE/U1: &lt;bad&gt; notes" in t for t in texts)
    assert any("cancelled by cli:alice" in t for t in texts)
