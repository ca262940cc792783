"""Fixtures of the browser tests: Debian's Chromium under Playwright, and a live demo to look at.

* ``browser`` (module): Playwright's sync API driving the system Chromium
  (``shutil.which("chromium")``, else ``/usr/bin/chromium``) headless, with the flags this closed
  network needs (:data:`CHROMIUM_ARGS`: no QUIC, no background or component downloads, no sync).
  Playwright gives every launch a fresh temporary profile (its own ``--user-data-dir``), and every
  test its own contexts: no cookie crosses tests. Nothing downloads a browser: without Chromium or
  the ``playwright`` package the tests skip with a message naming the packages — except under
  ``CI=true``, where a missing browser fails.
* ``demo`` (module): the real ``upshift demo --dashboard --approvals=manual --json`` as a
  subprocess of this checkout; the line it prints once its server listens gives the URL and the
  two sign-in tokens (admin, viewer). Its canaries wait for approval, which only the tests give.
  At teardown it gets SIGTERM and must end by itself, the JSON summary then the URL line on
  stdout, no traceback.
* :func:`missing`: the skip (or, under CI, the failure) for want of them.
* ``new_page()``: a page in a new browser context (closed after the test); ``shot(page, name)``:
  a full-page screenshot at ``tmp_path / "screens" / "<name>.png"``, copied to
  ``/tmp/upshift-screens/`` when ``UPSHIFT_SCREENS`` is set.

Sync Playwright, because these tests are sync functions: no loop is running in them. Per module,
not per session: while a sync Playwright is started, its event loop counts as running on the
main thread, and every async test after it (pytest-asyncio's own loops) would fail with "cannot
be called from a running event loop"; stopped at the module's end, it leaves the rest of the
suite alone. A launch costs about a second.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.helpers import ROOT

#: Headless, and nothing that reaches out: the machine's network is closed.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PACKAGES = "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
#: Where the screenshots are copied when UPSHIFT_SCREENS is set, for the closing note to cite.
STABLE_SCREENS = Path("/tmp/upshift-screens")
#: The demo's line once its server listens (shared/ops/demo.py, --dashboard).
DASHBOARD_LINE = re.compile(r"dashboard: (\S+)  token \(admin\): (\S+)  token \(viewer\): (\S+)")
#: Domain seconds per real second of the demo: its 8 h window lasts 4 real minutes, longer than
#: this module; its shortest simulated job (StarRocks, 1200 s) 10 s.
DEMO_SPEED = "120"


def missing(why: str, *, module: bool = False) -> NoReturn:
    """Skip (``module``: the whole module, at import) for want of the browser or Playwright —
    or fail, under ``CI=true``."""
    message = f"the browser tests need Chromium and Playwright ({why}): {PACKAGES}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " — under CI=true a missing browser is a failure", pytrace=False)
    pytest.skip(message, allow_module_level=module)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed: pip install -e '.[test]'")
    exe = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if exe is None:
        missing("no chromium on PATH")
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise  # a Chromium that is there but does not start is a failure, not a skip
    try:
        yield chromium
    finally:
        chromium.close()
        pw.stop()


@dataclass
class Demo:
    """The running demo: its dashboard's URL (ending in ``/``) and sign-in tokens."""

    url: str
    token: str
    viewer_token: str
    proc: subprocess.Popen[bytes]
    stderr: Path

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """``method path`` on the demo's server with the admin token: (status, JSON body)."""
        req = urllib.request.Request(
            self.url + path.lstrip("/"),
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    where = tmp_path_factory.mktemp("demo")
    out, err = where / "stdout", where / "stderr"
    cmd = [sys.executable, "-m", "shared.ops.cli", "demo", "--dashboard", "--approvals=manual", "--json"]
    cmd += ["--targets", "10", "--speed", DEMO_SPEED, "--timeout", "900"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 120
        while (found := DASHBOARD_LINE.search(err.read_text(errors="replace"))) is None:
            if proc.poll() is not None:
                pytest.fail(f"the demo exited with {proc.returncode}: {err.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the demo printed no dashboard line in 120 s: {err.read_text()[-3000:]}")
            time.sleep(0.05)  # polling a file the demo writes: the wait is on its content
        url, token, viewer = found.groups()
        yield Demo(url, token, viewer, proc, err)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("the demo did not end within 60 s of SIGTERM")
    log = err.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    # --dashboard --json: the summary, then the URL line (the rollout was cut short: not ok)
    text = out.read_text()
    summary, end = json.JSONDecoder().raw_decode(text)
    assert set(summary) >= {"ok", "targets", "approvals", "problems"}, summary
    assert json.loads(text[end:]) == {"dashboard": url, "token": token, "viewer_token": viewer}
    assert proc.returncode == (0 if summary["ok"] else 1)


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """A fresh context's page (its own cookies), 1280×900 (keywords: more of the context's options,
    ``timezone_id=``); the contexts close after the test."""
    contexts: list[Any] = []

    def open_page(**options: Any) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
        context.set_default_timeout(60_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Save a page's full-page screenshot as ``tmp_path/screens/<name>.png`` (and a copy in
    :data:`STABLE_SCREENS` when ``UPSHIFT_SCREENS`` is set); its path."""

    def take(page: Any, name: str) -> Path:
        screens = tmp_path / "screens"
        screens.mkdir(exist_ok=True)
        path = screens / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if os.environ.get("UPSHIFT_SCREENS"):
            STABLE_SCREENS.mkdir(exist_ok=True)
            shutil.copyfile(path, STABLE_SCREENS / path.name)
        return path

    return take
