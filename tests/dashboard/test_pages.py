"""The dashboard's HTML pages over `upshift serve`'s real app (aiohttp test client, no browser).

Real parts: ``build_app`` over the planning Harness's runtime (real ``plan_upgrades``,
``start_upgrades``, ``window_clock`` and ``chat_command`` on a SQLite bus and store, a FakeClock),
the fleet and scenario of :mod:`tests.dashboard._fleet` (canary awaiting approval by the
``leads`` grant, prod-a/prod-b planned, sr-1 running). Sign-in goes through the login form with
the fleet's tokens; control forms are posted as a browser would (the page's CSRF token and
nonce), and what they did is read back from the ledger and the audit.
"""

from __future__ import annotations

import asyncio
import re
import signal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from shared.dashboard import pages
from shared.dashboard.pages import CHANGES, SESSIONS
from shared.dashboard.session import LOGIN_COOKIE, SESSION_COOKIE
from shared.engine.chatops import submit
from shared.runtime import api
from shared.runtime.server import build_app
from simulator.natsd import free_port
from tests.dashboard._fleet import FLEET, FUNCTIONS, START, TOKENS, bearer, fleet, planned
from tests.functions._planning import Harness, fleet_from
from tests.helpers import eventually, start_serve, wait_healthy

CSRF = re.compile(r'name="csrf" value="([^"]*)"')
NONCE = re.compile(r'name="nonce" value="([^"]*)"')


class Dash:
    def __init__(self, h: Harness, app, runs: dict[str, str]) -> None:
        self.h, self.app, self.runs = h, app, runs
        self.clients: list[TestClient] = []

    async def client(self) -> TestClient:
        """A fresh browser: its own cookie jar, not signed in."""
        c = TestClient(TestServer(self.app) if not self.clients else self.clients[0].server)
        if not self.clients:
            await c.start_server()
        self.clients.append(c)
        return c

    async def signed_in(self, token: str) -> TestClient:
        c = await self.client()
        r = await login(c, TOKENS[token][1])
        assert r.status == 303, await r.text()
        return c


async def login(c: TestClient, token: str, next_: str = "/", **headers: str) -> ClientResponse:
    form = await c.get("/login", allow_redirects=False)
    assert form.status == 200, await form.text()
    csrf = CSRF.search(await form.text()).group(1)
    return await c.post(
        "/login",
        data={"token": token, "next": next_, "csrf": csrf},
        allow_redirects=False,
        headers=headers,
    )


@pytest.fixture
async def dash(tmp_path, monkeypatch, log_buf):
    for env, value, _ in TOKENS.values():
        monkeypatch.setenv(env, value)
    async with Harness(f"sqlite:///{tmp_path}/u.db", fleet(), START, functions=FUNCTIONS) as h:
        runs = await planned(h)
        d = Dash(h, build_app(h.runtime, command_wait_s=30.0), runs)
        try:
            yield d
        finally:
            for c in reversed(d.clients):  # the server's own client last: it stops the server
                await c.close()
    for _, value, _ in TOKENS.values():
        assert value not in log_buf.getvalue()  # a token is never logged


async def page(c: TestClient, path: str, status: int = 200) -> str:
    r = await c.get(path, allow_redirects=False)
    text = await r.text()
    assert r.status == status, (path, r.status, text[:2000])
    assert "Traceback" not in text
    return text


def forms(html: str) -> list[str]:
    """The control forms of a run page (their actions)."""
    return re.findall(r'<form method="post" action="/runs/[^/"]+/(\w+)"', html)


async def post_form(c: TestClient, html: str, action: str, **fields: str) -> ClientResponse:
    """Submit the page's ``action`` form as a browser would (its csrf and nonce)."""
    form = html[html.index(f'/{action}"') :]
    csrf, nonce = CSRF.search(form).group(1), NONCE.search(form).group(1)
    run = re.search(r'action="/runs/([^/"]+)/' + action, html).group(1)
    return await c.post(
        f"/runs/{run}/{action}", data={"csrf": csrf, "nonce": nonce, **fields}, allow_redirects=False
    )


# -- sign-in -------------------------------------------------------------------------------------


async def test_without_a_session_every_page_goes_to_the_login_page_and_healthz_stays_open(dash):
    c = await dash.client()
    canary = dash.runs["canary"]
    for path in ("/", "/?state=planned&kind=cce", f"/runs/{canary}", "/fleet", "/calendar", "/approvals"):
        r = await c.get(path, allow_redirects=False)
        assert r.status == 303, path
        location = urlsplit(r.headers["Location"])
        assert location.path == "/login" and parse_qs(location.query)["next"] == [path]
    r = await c.get("/?fragment=main", allow_redirects=False)  # the script's fetch: back to the page
    assert parse_qs(urlsplit(r.headers["Location"]).query)["next"] == ["/"]
    r = await c.post(f"/runs/{canary}/approve", data={}, allow_redirects=False)
    assert r.status == 303 and parse_qs(urlsplit(r.headers["Location"]).query)["next"] == [f"/runs/{canary}"]
    assert (await c.get("/dashboard/stream")).status == 401
    assert (await c.get("/healthz")).status == 200
    # a link from chat (cross-site: no SameSite=Strict cookie) reloads itself once from here
    r = await c.get("/fleet", headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert r.status == 200 and 'http-equiv="refresh"' in await r.text()
    assert await dash.h.store.audit.entries() == []


async def test_the_login_flow(dash):
    c = await dash.client()
    form = await c.get("/login?next=/fleet", allow_redirects=False)
    assert form.status == 200
    assert form.cookies[LOGIN_COOKIE]["httponly"] and form.cookies[LOGIN_COOKIE]["samesite"] == "Strict"
    html = await form.text()
    assert 'name="token"' in html and 'value="/fleet"' in html

    r = await login(c, "not-a-token-of-this-fleet", "/fleet")
    assert r.status == 401
    text = await r.text()
    assert 'id="login-error"' in text and 'name="token"' in text  # the form again, with the error
    assert SESSION_COOKIE not in r.cookies

    # a sign-in form without its CSRF token (posted from elsewhere) is refused, valid token or not
    r = await c.post("/login", data={"token": TOKENS["lead"][1], "next": "/"}, allow_redirects=False)
    assert r.status == 403 and SESSION_COOKIE not in r.cookies

    r = await login(c, TOKENS["lead"][1], "/fleet")
    assert r.status == 303 and r.headers["Location"] == "/fleet"
    cookie = r.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP here
    assert TOKENS["lead"][1] not in cookie.value and "approver" not in cookie.value
    html = await page(c, "/fleet")
    assert "lead" in html and "approver" in html and "Sign out" in html
    # signed in already: the login page goes on
    r = await c.get("/login?next=/approvals", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/approvals"

    # behind a TLS proxy the cookie is Secure; a next to another site is dropped
    other = await dash.client()
    r = await login(other, TOKENS["board"][1], "//evil.example/x", **{"X-Forwarded-Proto": "https"})
    assert r.status == 303 and r.headers["Location"] == "/"
    assert r.cookies[SESSION_COOKIE]["secure"]

    # sign out: the cookie goes, the pages ask again — by the form's POST only (a link cannot)
    html = await page(c, "/")
    assert (await c.get("/logout", allow_redirects=False)).status == 405
    r = await c.post("/logout", data={"csrf": "é"}, allow_redirects=False)
    assert r.status == 403
    await page(c, "/")  # still signed in
    r = await c.post("/logout", data={"csrf": CSRF.search(html).group(1)}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/login"
    await page(c, "/", 303)


async def test_a_tampered_expired_removed_or_rotated_session_is_the_login_page_again(dash, monkeypatch):
    c = await dash.signed_in("ops")
    await page(c, "/")
    value = c.session.cookie_jar.filter_cookies(c.make_url("/"))[SESSION_COOKIE].value
    name, expiry, mac = value.split(":")
    fresh = await dash.client()

    async def with_cookie(cookie: str) -> int:
        r = await fresh.get("/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}, allow_redirects=False)
        return r.status

    assert await with_cookie(value) == 200
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert await with_cookie(f"{name}:{expiry}:{flipped}") == 303
    assert await with_cookie(f"lead:{expiry}:{mac}") == 303  # another token's name, same signature
    assert await with_cookie(f"{name}:{int(expiry) + 3600}:{mac}") == 303  # extended by hand
    assert await with_cookie("garbage") == 303
    assert await with_cookie(f"{name}:{expiry}:{'é' * len(mac)}") == 303  # non-ASCII: no 500

    # a token whose value was rotated: its sessions end
    monkeypatch.setenv(TOKENS["ops"][0], "ops-token-rotated-value-1")
    assert await with_cookie(value) == 303
    monkeypatch.setenv(TOKENS["ops"][0], TOKENS["ops"][1])
    assert await with_cookie(value) == 200
    # the token removed from the fleet: signed out (roles are read from the fleet at each request)
    without_ops = re.sub(r"\n    - \{name: ops,[^\n]*", "", FLEET)
    assert without_ops != FLEET
    dash.h.runtime.fleet = fleet_from(without_ops)
    assert await with_cookie(value) == 303

    # an expired session: the server says so, whatever the browser keeps
    dash.h.runtime.fleet = fleet()
    dash.app[SESSIONS].ttl_s = 1
    short = await dash.client()
    r = await login(short, TOKENS["board"][1])
    expiring = r.cookies[SESSION_COOKIE].value
    assert await with_cookie(expiring) == 200
    await asyncio.sleep(2.1)  # past its expiry (a lower bound: a slow machine only waits longer)
    assert await with_cookie(expiring) == 303


# -- the pages -------------------------------------------------------------------------------------


async def test_every_page_renders_what_it_shows(dash):
    c = await dash.signed_in("board")
    canary, sr = dash.runs["canary"], dash.runs["sr-1"]

    html = await page(c, "/")
    assert '<meta name="viewport"' in html and "/static/dashboard.js" in html
    for run in dash.runs.values():
        assert f'href="/runs/{run}"' in html
    counts = {state: n for n, state in re.findall(r'<span class="n">(\d+)</span> (\w+)</a>', html)}
    assert counts["awaiting_approval"] == "1" and counts["planned"] == "2" and counts["running"] == "1"
    assert "v1.28.0-r0 → v1.29.0-r0" in html

    html = await page(c, "/?state=planned&kind=cce")
    assert f'data-run="{dash.runs["prod-a"]}"' in html and f'data-run="{canary}"' not in html
    assert '<span class="n">1</span> awaiting_approval' in html  # counts over the other filters
    html = await page(c, "/?target=sr-1&wave=2")
    assert re.findall(r'data-run="(\w+)"', html) == [sr]
    for query, field in (
        ("state=bogus", "state"),
        ("wave=x", "wave"),
        ("window=nope", "window"),
        ("colour=red", "colour"),
    ):
        html = await page(c, f"/?{query}", 400)
        assert f"{field}: " in html and 'name="state"' in html  # the form again, naming it

    fragment = await page(c, "/?fragment=main&kind=cce")
    assert "<html" not in fragment and 'id="runs"' in fragment and f'data-run="{canary}"' in fragment

    html = await page(c, f"/runs/{canary}")
    assert 'id="timeline"' in html and 'id="approval"' in html and "leads" in html
    assert "awaiting_approval" in html and "Audit" in html
    # what a stage function and track_job write of a stage the vendor failed
    await dash.h.store.ledger.note_stage(
        sr,
        "upgrade",
        calls=1,
        status_calls=3,
        upgrade=True,
        state="failed",
        started_at="2026-06-09T12:00:00+00:00",
        ended_at="2026-06-09T12:25:00+00:00",
        job_id="job-4711",
        code="DBS.280001",
        message="the instance is <busy>",
        request_id="req-0b5e",
    )
    html = await page(c, f"/runs/{sr}")
    row = re.search(r'<tr data-stage="upgrade" data-state="failed">.*?</tr>', html, re.S).group(0)
    assert '<svg class="bar"' in row and 'width="100.00%"' in row  # the one stage spans the timeline
    assert "25m" in row and "1 / 3" in row and "job-4711" in row
    error = re.search(r'id="vendor-error">.*?</dl>', html, re.S).group(0)
    assert "DBS.280001" in error and "req-0b5e" in error and "the instance is &lt;busy&gt;" in error
    await page(c, "/runs/r0000000000000000", 404)
    await page(c, "/runs/not-a-run", 404)

    html = await page(c, "/fleet")
    for target in ("canary", "prod-a", "prod-b", "sr-1"):
        assert f'data-target="{target}"' in html
    assert "v1.29" in html and "fridays" in html

    html = await page(c, "/calendar")
    assert 'data-window="night"' in html and "Europe/Berlin" in html and "CEST" in html and "UTC" in html
    assert "fridays" in html and "reporting" in html
    html = await page(c, "/calendar?tz=Asia/Tokyo&days=3")
    assert "<th>Asia/Tokyo</th>" in html and "JST" in html and "(3 days)" in html
    assert "tz: " in await page(c, "/calendar?tz=Mars/Olympus", 400)
    assert "days: " in await page(c, "/calendar?days=99", 400)

    html = await page(c, "/approvals")
    assert f'data-run="{canary}"' in html and "0 of 1" in html and "leads" in html

    r = await c.get("/")
    assert (
        "script-src 'self'" in r.headers["Content-Security-Policy"]
        and r.headers["Cache-Control"] == "no-store"
    )
    css, js = await c.get("/static/dashboard.css"), await c.get("/static/dashboard.js")
    assert css.status == js.status == 200
    assert css.content_type == "text/css" and "javascript" in js.content_type
    assert "EventSource" in await js.text()


async def test_a_viewer_sees_no_control_buttons_an_approver_and_an_operator_theirs(dash):
    canary, prod = dash.runs["canary"], dash.runs["prod-a"]
    viewer, lead, ops = (
        await dash.signed_in("board"),
        await dash.signed_in("lead"),
        await dash.signed_in("ops"),
    )
    assert forms(await page(viewer, f"/runs/{canary}")) == []
    assert (
        "<button" not in (await page(viewer, f"/runs/{canary}")).split('id="timeline"')[0].split("<main")[1]
    )
    assert forms(await page(lead, f"/runs/{canary}")) == ["approve", "deny", "pause", "cancel"]
    # an operator may pause and cancel, not approve (approvers only, of the leads grant)
    assert forms(await page(ops, f"/runs/{canary}")) == ["pause", "cancel"]
    assert forms(await page(ops, f"/runs/{prod}")) == ["pause", "cancel"]
    # another approver outside the leads grant may deny but not approve
    other = await dash.signed_in("other")
    assert "approve" not in forms(await page(other, f"/runs/{canary}"))


# -- the controls ----------------------------------------------------------------------------------


async def test_a_control_post_without_its_csrf_token_is_403_and_does_nothing(dash):
    canary = dash.runs["canary"]
    lead = await dash.signed_in("lead")
    html = await page(lead, f"/runs/{canary}")
    nonce = NONCE.search(html).group(1)
    for data in (
        {"nonce": nonce},
        {"nonce": nonce, "csrf": "0" * 64},
        {"csrf": ""},
        {"nonce": nonce, "csrf": "é"},
    ):
        r = await lead.post(f"/runs/{canary}/approve", data=data, allow_redirects=False)
        assert r.status == 403, data
        assert "CSRF" in await r.text()
    # another session's token does not do either
    ops = await dash.signed_in("ops")
    other_csrf = CSRF.search(await page(ops, "/")).group(1)
    r = await lead.post(f"/runs/{canary}/approve", data={"csrf": other_csrf}, allow_redirects=False)
    assert r.status == 403
    await dash.h.settle()
    assert await dash.h.store.audit.entries() == []
    assert (await dash.h.run(canary))["state"] == "awaiting_approval"


async def test_an_approver_approves_a_pending_run_with_the_button_and_sees_the_reply(dash):
    canary = dash.runs["canary"]
    lead = await dash.signed_in("lead")
    html = await page(lead, f"/runs/{canary}")
    r = await post_form(lead, html, "approve", comment="canary  looks good")
    assert r.status == 303, await r.text()
    location = r.headers["Location"]
    assert location.startswith(f"/runs/{canary}?done=")
    after = await page(lead, location)
    flash = unescape(
        re.search(r'<p class="flash (\w+)" role="status" id="flash">(.*?)</p>', after, re.S).group(2)
    )
    assert "approved" in flash and "canary looks good" in flash
    assert 'class="flash ok"' in after
    run = await dash.h.run(canary)
    assert run["state"] == "planned" and run["approved_by"] == ["token:lead"]
    (entry,) = await dash.h.store.audit.entries(run=canary)
    assert (entry["command"], entry["via"], entry["user"], entry["platform"], entry["outcome"]) == (
        "approve",
        "token:lead",
        "lead",
        "api",
        "ok",
    )
    assert entry["text"] == f"approve {canary} canary looks good"
    # the same form sent again (back button, double click) is the same command: one entry
    r = await post_form(lead, html, "approve", comment="canary  looks good")
    assert r.headers["Location"] == location
    await dash.h.settle()
    assert len(await dash.h.store.audit.entries(run=canary)) == 1
    # the run no longer waits: its page offers no approve, and the approvals page is empty
    assert "approve" not in forms(await page(lead, f"/runs/{canary}"))
    assert f'data-run="{canary}"' not in await page(lead, "/approvals")


async def test_a_viewers_forged_control_post_is_refused_by_chat_command_and_the_refusal_flashed(dash):
    canary = dash.runs["canary"]
    viewer = await dash.signed_in("board")
    html = await page(viewer, f"/runs/{canary}")
    csrf = CSRF.search(html).group(1)  # a valid form token of the viewer's own session
    r = await viewer.post(f"/runs/{canary}/approve", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    after = await page(viewer, r.headers["Location"])
    assert 'class="flash refused"' in after
    assert (await dash.h.run(canary))["state"] == "awaiting_approval"
    (entry,) = await dash.h.store.audit.entries(run=canary)
    assert entry["outcome"] == "refused" and entry["via"] == "token:board"


async def test_user_text_is_escaped_a_deny_reason_with_a_script(dash):
    canary = dash.runs["canary"]
    lead = await dash.signed_in("lead")
    html = await page(lead, f"/runs/{canary}")
    evil = '<script>alert("x")</script> & <b>bold</b>'
    r = await post_form(lead, html, "deny", reason=evil)
    assert r.status == 303
    after = await page(lead, r.headers["Location"])
    assert (await dash.h.run(canary))["state"] == "denied"
    assert "<script>alert" not in after and "<b>bold</b>" not in after
    assert "&lt;script&gt;alert(" in after and "&lt;b&gt;bold&lt;/b&gt;" in after
    # a denial needs a reason: the page again with the grammar's refusal, nothing published
    html = await page(lead, f"/runs/{dash.runs['prod-a']}")
    r = await post_form(lead, html, "cancel")
    assert r.status == 303
    r = await lead.post(
        f"/runs/{dash.runs['prod-b']}/deny",
        data={"csrf": CSRF.search(html).group(1), "reason": "   "},
        allow_redirects=False,
    )
    assert r.status == 400 and "reason" in await r.text()
    assert [e["run"] for e in await dash.h.store.audit.entries()] == [canary, dash.runs["prod-a"]]


async def test_a_form_post_and_the_api_submit_their_command_through_the_one_flow(dash, monkeypatch):
    """The dashboard's cancel button and ``POST /api/runs/{id}/cancel`` are one flow
    (:func:`shared.engine.chatops.submit.submit`): the same command, the same audit entry but
    for the run, the channel and the ids."""
    through: list[submit.Submission] = []
    real = submit.submit

    async def counted(sub: submit.Submission, *args, **kwargs):  # type: ignore[no-untyped-def]
        through.append(sub)
        return await real(sub, *args, **kwargs)

    monkeypatch.setattr(pages, "submit", counted)
    monkeypatch.setattr(api, "submit", counted)
    a, b = dash.runs["prod-a"], dash.runs["prod-b"]
    lead = await dash.signed_in("lead")
    r = await post_form(lead, await page(lead, f"/runs/{a}"), "cancel")
    assert r.status == 303, await r.text()
    r = await lead.post(f"/api/runs/{b}/cancel", json={}, headers=bearer("lead"))
    assert r.status == 200, await r.text()
    answered = (await r.json())["entry"]
    (form_entry,) = await dash.h.store.audit.entries(run=a)
    (api_entry,) = await dash.h.store.audit.entries(run=b)
    assert answered == api_entry
    assert [(s.edge, s.principal, s.user, s.text) for s in through] == [
        ("dashboard", "lead", "lead", f"cancel {a}"),
        ("api", "lead", "lead", f"cancel {b}"),
    ]

    def same(entry: dict, target: str) -> dict:
        """What two cancels of two runs by one token share (the run and its target named alike)."""
        own = {"id", "at", "recorded", "channel", "run", "text", "trigger_id", "events"}
        return {
            k: str(v).replace(entry["run"], "<run>").replace(target, "<target>")
            for k, v in entry.items()
            if k not in own
        }

    assert same(form_entry, "prod-a") == same(api_entry, "prod-b")
    assert len(form_entry["events"]) == len(api_entry["events"]) == 1
    assert (form_entry["channel"], api_entry["channel"]) == ("dashboard", "api")
    assert (form_entry["outcome"], form_entry["via"], form_entry["command"]) == ("ok", "token:lead", "cancel")
    assert (await dash.h.run(a))["state"] == (await dash.h.run(b))["state"] == "cancelled"


# -- live updates ----------------------------------------------------------------------------------


async def next_event(r: ClientResponse, timeout: float = 30.0) -> str:
    """The next event's name from an event stream (comments and heartbeats skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            line = (await r.content.readline()).decode()
            if not line:
                raise AssertionError("the stream ended")
            if line.startswith("event: "):
                return line.removeprefix("event: ").strip()


async def test_the_stream_says_changed_after_a_state_change_and_ends_on_shutdown(dash):
    canary = dash.runs["canary"]
    lead = await dash.signed_in("lead")
    r = await lead.get("/dashboard/stream")
    assert r.status == 200 and r.content_type == "text/event-stream"
    assert (await r.content.readline()).startswith(b"retry: ")
    assert await r.content.readline() == b": connected\n"  # the watcher has its baseline now
    changes = dash.app[CHANGES]
    assert changes.streams == 1

    html = await page(lead, f"/runs/{canary}")
    assert (await post_form(lead, html, "approve")).status == 303
    assert await next_event(r) == "changed"
    # the page's fragment now shows the new state
    fragment = await page(lead, f"/runs/{canary}?fragment=main")
    assert 'id="run-state">planned<' in fragment

    # bounded: one stream more than allowed is 503
    changes.max_streams = 1
    extra = await lead.get("/dashboard/stream")
    assert extra.status == 503 and extra.headers["Retry-After"]

    # shutdown ends the stream (the server need not wait out its timeout)
    await changes.close()
    async with asyncio.timeout(10):
        while await r.content.readline():
            pass
    await eventually(lambda: changes.streams == 0)


async def test_upshift_serve_stops_on_sigterm_ending_an_open_stream_cleanly(tmp_path):
    """The real process: its SIGTERM shutdown ends the stream (the chunked body completes) rather
    than leaving it to be cut at the shutdown timeout, and serve exits 0."""
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(FLEET)
    env = {env: value for env, value, _ in TOKENS.values()}
    port = free_port()
    proc = start_serve(f"sqlite:///{tmp_path}/serve.db", port, "--fleet", str(fleet_file), env=env)
    try:
        await wait_healthy(port, proc, timeout=60)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            base = f"http://127.0.0.1:{port}"
            csrf = CSRF.search(await (await s.get(f"{base}/login")).text()).group(1)
            r = await s.post(f"{base}/login", data={"token": TOKENS["board"][1], "csrf": csrf, "next": "/"})
            assert r.status == 200 and 'id="runs"' in await r.text()
            stream = await s.get(f"{base}/dashboard/stream")
            assert stream.status == 200
            assert await stream.content.readline() == b"retry: 3000\n"
            assert await stream.content.readline() == b": connected\n"
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                rest = await stream.content.read()  # a cut stream raises ClientPayloadError here
            assert rest == b"\n"
        assert await asyncio.to_thread(proc.wait, 60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
