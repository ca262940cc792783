"""The dashboard in real headless Chromium, during a live ``upshift demo --dashboard
--approvals=manual`` rollout (tests/browser/conftest.py): its five canaries (one per kind) wait
for approval, and each test takes its own — starrocks-001 (the runs page updating live),
kafka-001 (the timeline: precheck, upgrade, verify), cce-001 (the Approve button),
oceanbase-001 (what a viewer sees) and autopilot-001 (left waiting: the approvals page).

Every wait is on a state of the page or of the API (Playwright's ``expect`` with generous
timeouts), never a fixed sleep. Each page is saved as a screenshot (``shot``): login, runs,
run-detail, fleet, calendar, approvals.
"""

from __future__ import annotations

import re
import time
from typing import Any

from shared.dashboard.session import SESSION_COOKIE
from tests.browser.conftest import Demo, missing

try:
    from playwright.sync_api import Page, expect
except ImportError:
    missing("the playwright package is not installed: pip install -e '.[test]'", module=True)

#: Playwright's waits, in ms: a busy 2-core machine runs the demo, Chromium and the tests at once.
WAIT = 60_000
CONTROLS = re.compile(r"^(Approve|Deny|Pause|Resume|Cancel)\b")


def sign_in(page: Page, demo: Demo, token: str) -> None:
    page.goto(demo.url + "login")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def run_of(demo: Demo, target: str, state: str = "awaiting_approval") -> dict[str, Any]:
    """``target``'s run from ``GET /api/runs`` once it is in ``state``."""
    deadline = time.monotonic() + WAIT / 1000
    seen: Any = None
    while time.monotonic() < deadline:
        status, seen = demo.api("GET", f"api/runs?target={target}")
        assert status == 200, seen
        items = [r for r in seen["items"] if r["target"] == target]
        if items and items[0]["state"] == state:
            return dict(items[0])
        time.sleep(0.1)  # polling the API: the wait is on the run's state
    raise AssertionError(f"{target} has no run in state {state}: {seen}")


def approve(demo: Demo, run: str) -> None:
    status, body = demo.api("POST", f"api/runs/{run}/approve", {"comment": "from the browser test"})
    # 202: its audit entry did not come within the route's wait — the command still runs
    assert (status, body.get("outcome", body.get("status"))) in ((200, "ok"), (202, "accepted")), body


def test_login_with_a_token_and_a_wrong_one(new_page, demo, shot):
    page = new_page()
    page.goto(demo.url)
    # not signed in: the runs page sends the browser to the sign-in form, to come back after
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$|/login\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "login")

    page.get_by_label("Token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login"))
    assert "not-the-token" not in page.content()  # the wrong value is not echoed back
    assert SESSION_COOKIE not in {c["name"] for c in page.context.cookies()}

    page.get_by_label("Token").fill(demo.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(demo.url)
    expect(page.locator("#runs")).to_be_visible()
    expect(page.locator("header .who")).to_contain_text("demo-admin")
    expect(page.locator("header .who .role")).to_have_text("admin")
    session = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert len(session) == 1 and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict", session


def test_the_runs_page_updates_without_a_reload(new_page, demo, shot):
    page = new_page()
    sign_in(page, demo, demo.token)
    run = run_of(demo, "starrocks-001")
    row = page.locator(f'#runs tr[data-run="{run["id"]}"]')
    expect(row).to_have_attribute("data-state", "awaiting_approval", timeout=WAIT)
    navigations: list[str] = []
    page.on(
        "framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None
    )
    page.evaluate("window.__upshiftMarker = 'set before the change'")
    updates = int(page.locator("#main").get_attribute("data-updates") or 0)

    approve(demo, run["id"])  # outside the page: only the live stream can tell it

    expect(row.locator(".state")).not_to_have_text("awaiting_approval", timeout=WAIT)
    assert page.evaluate("window.__upshiftMarker") == "set before the change"
    assert navigations == []
    assert int(page.locator("#main").get_attribute("data-updates") or 0) > updates
    shot(page, "runs")


def test_run_detail_shows_the_stage_timeline(new_page, demo, shot):
    run = run_of(demo, "kafka-001")
    approve(demo, run["id"])
    page = new_page()
    sign_in(page, demo, demo.token)
    page.goto(demo.url + f"runs/{run['id']}")
    expect(page.locator("#run-state")).to_have_text("succeeded", timeout=2 * WAIT)
    status, detail = demo.api("GET", f"api/runs/{run['id']}")
    assert status == 200, detail
    names = [s["name"] for s in detail["stages"]]
    assert len(names) >= 2, detail["stages"]
    # live updates swapped the page in as the run went: wait for the last stage's row too
    stages = page.locator("#timeline tbody tr[data-stage]")
    expect(stages).to_have_count(len(names), timeout=WAIT)
    assert [stages.nth(i).get_attribute("data-stage") for i in range(len(names))] == names
    for i in range(len(names)):
        expect(stages.nth(i)).to_have_attribute("data-state", "succeeded")
        # a bar per stage, sized by its duration
        bar = stages.nth(i).locator("svg.bar rect")
        expect(bar).to_have_count(1)
        assert float((bar.get_attribute("width") or "0%").rstrip("%")) > 0
    expect(page.locator("dl.facts").first).to_contain_text("token:demo-admin")  # approved by
    expect(page.locator("#audit")).to_contain_text("approve")
    shot(page, "run-detail")


def test_a_pending_approval_is_approved_by_clicking_approve(new_page, demo, shot):
    run = run_of(demo, "cce-001")
    page = new_page()
    sign_in(page, demo, demo.token)
    page.goto(demo.url + f"runs/{run['id']}")
    expect(page.locator("#run-state")).to_have_text("awaiting_approval")
    stages = page.locator("#timeline tbody tr[data-stage]")
    expect(stages.first).to_have_attribute("data-state", "pending")  # the kind's stages, none reached

    page.get_by_label("approval comment").fill("looks good")
    page.get_by_role("button", name="Approve").click()

    page.wait_for_url(re.compile(rf"/runs/{run['id']}\?done="))
    expect(page.locator("#run-state")).not_to_have_text("awaiting_approval", timeout=WAIT)
    # the run proceeds: its first stage starts (the page follows it live)
    expect(stages.first).not_to_have_attribute("data-state", "pending", timeout=WAIT)
    expect(page.locator("#approval")).to_contain_text("token:demo-admin")
    status, audit = demo.api("GET", f"api/audit?run={run['id']}")
    assert status == 200, audit
    approvals = [e for e in audit["entries"] if e["command"] == "approve"]
    assert len(approvals) == 1, audit
    assert approvals[0]["outcome"] == "ok" and approvals[0]["actor"] == "token:demo-admin", approvals


def test_a_viewer_sees_no_control_buttons(new_page, demo, shot):
    run = run_of(demo, "oceanbase-001")
    admin = new_page()
    sign_in(admin, demo, demo.token)
    admin.goto(demo.url + f"runs/{run['id']}")
    expect(admin.locator("#run-state")).to_have_text("awaiting_approval")
    # the same page for an admin has them: the viewer's lack of them is its role's
    expect(admin.get_by_role("button", name="Approve")).to_be_visible()
    expect(admin.get_by_role("button", name="Deny")).to_be_visible()

    viewer = new_page()
    sign_in(viewer, demo, demo.viewer_token)
    expect(viewer.locator("header .who .role")).to_have_text("viewer")
    viewer.goto(demo.url + f"runs/{run['id']}")
    expect(viewer.locator("#run-state")).to_have_text("awaiting_approval")
    expect(viewer.locator("#approval")).to_be_visible()  # it reads everything …
    expect(viewer.get_by_role("button", name=CONTROLS)).to_have_count(0)  # … and controls nothing
    expect(viewer.locator("form.action")).to_have_count(0)
    shot(viewer, "run-detail-viewer")


def test_fleet_calendar_and_approvals_pages(new_page, demo, shot):
    waiting = run_of(demo, "autopilot-001")
    page = new_page(timezone_id="Europe/Paris")  # a viewer far from the window's Seoul
    sign_in(page, demo, demo.token)

    page.goto(demo.url + "fleet")
    expect(page.locator("#fleet tbody tr[data-target]")).to_have_count(10)
    expect(page.locator('#fleet tr[data-target="autopilot-001"]')).to_contain_text("v1.28")
    shot(page, "fleet")

    page.goto(demo.url + "calendar")
    # the page names the browser's time zone once, then shows the windows in it too
    page.wait_for_url(re.compile(r"/calendar\?.*tz=Europe%2FParis"))
    window = page.locator('section.window[data-window="sat-night"]')
    expect(window.locator("thead")).to_contain_text("Opens (Asia/Seoul)")
    expect(window.locator("thead")).to_contain_text("Europe/Paris")
    # Saturday 02:00 in Seoul is Friday evening in Paris
    expect(window.locator("table.calendar tbody tr").first).to_contain_text(re.compile(r"Sat .* 02:00 KST"))
    expect(window.locator("table.calendar tbody tr").first).to_contain_text(
        re.compile(r"Fri .* (18|19):00 CE")
    )
    shot(page, "calendar")

    page.goto(demo.url + "approvals")
    row = page.locator(f'#approvals tr[data-run="{waiting["id"]}"]')
    expect(row).to_contain_text("autopilot-001")
    expect(row).to_contain_text("0 of 1")
    shot(page, "approvals")
