"""``upshift chat <words…>``: a chat command from a shell, as the OS user, on the real bus.

Run as people run it (subprocesses of this checkout; the OS user set through ``USER``/``LOGNAME``,
which :func:`getpass.getuser` reads first). A text the grammar refuses never reaches the bus; a
command nobody answers exits 3 after publishing exactly the ``chat.command`` a consumer then
receives; against a real ``upshift serve`` (whose ``chat_command`` authorizes with the fleet's
``rbac`` ``cli:`` grants) ``help`` answers the help text, a user in no grant is refused (exit 1),
and ``upshift audit`` lists both.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from click.testing import CliRunner

from events import Event, T
from shared.bus import Subscription, open_bus
from shared.domain.commands import GRAMMAR
from shared.ops.cli import cli
from simulator.natsd import free_port
from tests.functions._planning import bus_url
from tests.helpers import ROOT, eventually, start_serve, wait_healthy

USER = "upshift-test-op"
FLEET = f"""\
clouds: {{huawei: {{region: ap-southeast-1, project_id: p1}}}}
targets:
  - {{name: cce-1, kind: cce, cluster_id: c-1}}
rbac:
  - {{name: laptop, role: viewer, cli: [{USER}]}}
"""


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    return bus_url(request, tmp_path)


async def upshift(*args: str, user: str = USER) -> tuple[int, str, str]:
    """The real command as ``user``; the timeout only guards against a hang."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.ops.cli", *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "USER": user, "LOGNAME": user, "COLUMNS": "250"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("words", "needle", "usage"),
    [
        (["frobnicate", "all"], "unknown command 'frobnicate'", "/upshift <command>"),
        (["deny", "r0123456789abcde"], "a denial needs a reason", "/upshift deny <run> <reason…>"),
        (["pause", "kind:mainframe"], "unknown kind 'mainframe'", "/upshift pause <scope>"),
    ],
)
def test_a_text_the_grammar_refuses_is_exit_2_with_usage_and_reaches_no_bus(tmp_path, words, needle, usage):
    out = CliRunner().invoke(cli, ["chat", *words, "--bus", f"sqlite:///{tmp_path}/u.db"])
    assert out.exit_code == 2, out.output
    assert needle in out.output and f"usage: {usage}" in out.output
    assert "Traceback" not in out.output
    assert not (tmp_path / "u.db").exists()


async def test_nobody_answering_is_exit_3_after_publishing_the_command(backend):
    seen: list[Event] = []

    async def record(event: Event) -> list:
        seen.append(event)
        return []

    bus = open_bus(backend)
    bus.subscribe(Subscription("chat_cli_recorder", T.CHAT_COMMAND, {}, record))
    await bus.start()
    consuming = asyncio.create_task(bus.run())
    try:
        code, out, err = await upshift("chat", "pause", "kind:cce", "--bus", backend, "--wait", "0.5")
        assert code == 3, (out, err)
        assert "is `upshift serve` running on this bus?" in err
        await eventually(lambda: len(seen) == 1)
    finally:
        await bus.close()
        await asyncio.gather(consuming, return_exceptions=True)
    event = seen[0]
    assert event.id in err  # the message names the command, to find it in the audit later
    assert event.extensions == {"via": "cli"}
    assert (event.data.platform, event.data.channel, event.data.user, event.data.text) == (
        "cli",
        "cli",
        USER,
        "pause kind:cce",
    )


# -- against the real `upshift serve` -------------------------------------------------------------------


@pytest.fixture
async def served(backend, tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    port = free_port()
    proc = start_serve(backend, port, "--fleet", str(fleet))
    try:
        await wait_healthy(port, proc, timeout=60)
        yield backend
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_help_answers_the_help_text_and_the_audit_lists_it(served):
    code, out, err = await upshift("chat", "help", "--bus", served)
    assert code == 0, (out, err)
    for spec in GRAMMAR:
        assert spec.usage in out, (spec.usage, out)

    code, out, err = await upshift("chat", "--json", "--bus", served)  # no words: help
    assert code == 0, (out, err)
    entry = json.loads(out)
    assert (entry["outcome"], entry["platform"], entry["text"]) == ("ok", "cli", "help")
    assert entry["actor"] == f"cli:{USER}"

    code, out, err = await upshift("audit", "--json", "--bus", served)
    assert code == 0, (out, err)
    trail = json.loads(out)
    assert [(e["text"], e["outcome"], e["actor"]) for e in trail] == [("help", "ok", f"cli:{USER}")] * 2
    code, out, err = await upshift("audit", "--bus", served)
    assert code == 0 and "2 audit entries" in out and f"cli:{USER}" in out, (out, err)


async def test_a_user_in_no_grant_is_refused_with_exit_1(served):
    code, out, err = await upshift("chat", "status", "--bus", served, user="mallory")
    assert code == 1, (out, err)
    assert err.strip() and not out.strip()  # the refusal is the reply, on stderr
    code, out, err = await upshift("chat", "status", "--json", "--bus", served, user="mallory")
    assert code == 1, (out, err)
    entry = json.loads(out)
    assert (entry["outcome"], entry["actor"]) == ("refused", "cli:mallory")
    code, out, _ = await upshift("audit", "--json", "--bus", served)
    assert [e["outcome"] for e in json.loads(out)] == ["refused", "refused"]
