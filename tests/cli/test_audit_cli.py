"""``upshift audit [RUN]``: the trail recorded in the real store (SQLite file, NATS KV), as a table
and as JSON, one run's, the last N; a RUN that is no run id is a usage error.

The entries are written through the store's own :class:`shared.store.audit.Audit`, as a command's
handler writes them; ``tests/cli/test_chat_cli.py`` checks one that a command run through
``upshift serve`` recorded.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from shared.ops.cli import cli
from shared.store import open_store
from tests.functions._planning import bus_url

RUN = "r0123456789abcde"
OTHER_RUN = "rfedcba987654321"
ENTRIES = [
    {
        "id": "c1",
        "at": "2026-11-21T02:00:01+00:00",
        "platform": "slack",
        "actor": "slack:T0SRE/U024BE7LH",
        "via": "slack",
        "team": "T0SRE",
        "user": "U024BE7LH",
        "user_name": "alice",
        "channel": "C0SRE",
        "command": "approve",
        "text": f"approve {RUN} canary is fine",
        "run": RUN,
        "scope": None,
        "outcome": "ok",
        "reply": f"approved {RUN}",
    },
    {
        "id": "c2",
        "at": "2026-11-21T02:00:02+00:00",
        "platform": "cli",
        "actor": "cli:mallory",
        "via": "cli",
        "user": "mallory",
        "command": "pause",
        "text": "pause all",
        "run": None,
        "scope": "all",
        "outcome": "refused",
        "reply": "cli user mallory may not pause",
    },
    {
        "id": "c3",
        "at": "2026-11-21T02:00:03+00:00",
        "platform": "api",
        "actor": "token:chatops",
        "via": "token:chatops",
        "user": "bob",
        "command": "deny",
        "text": f"deny {OTHER_RUN} too late",
        "run": OTHER_RUN,
        "scope": None,
        "outcome": "invalid",
        "reply": f"run {OTHER_RUN} is not awaiting approval",
    },
]


#: The entries as the store holds them (it may add fields of its own), by id.
STORED: dict[str, dict] = {}


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    url = bus_url(request, tmp_path)

    async def record() -> None:
        store = open_store(url)
        await store.start()
        try:
            for e in reversed(ENTRIES):  # written out of order: the listing sorts by time
                STORED[e["id"]] = await store.audit.record(e)
        finally:
            await store.close()

    asyncio.run(record())
    return url


def audit(*args: str):
    # a wide terminal, so the table's cells are not wrapped mid-word
    return CliRunner().invoke(cli, ["audit", *args], env={"COLUMNS": "250"})


def test_the_trail_as_json_oldest_first(backend):
    out = audit("--bus", backend, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [STORED[e["id"]] for e in ENTRIES]


def test_one_runs_entries_and_the_last_n(backend):
    out = audit(RUN, "--bus", backend, "--json")
    assert out.exit_code == 0, out.output
    assert [e["id"] for e in json.loads(out.output)] == ["c1"]
    out = audit("--bus", backend, "--json", "--limit", "2")
    assert [e["id"] for e in json.loads(out.output)] == ["c2", "c3"]


def test_the_table_shows_time_actor_platform_command_run_outcome_and_reply(backend):
    out = audit("--bus", backend)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert "3 audit entries" in lines[0]
    header = next(line for line in lines if "actor" in line)
    for column in ("time", "actor", "platform", "command", "run", "outcome", "reply"):
        assert column in header
    rows = [line for line in lines if "2026-11-21" in line]
    assert len(rows) == 3
    for row, e in zip(rows, ENTRIES, strict=True):  # oldest first, each field in its row
        for field in ("at", "actor", "platform", "text", "outcome", "reply"):
            assert str(e[field]) in row, (field, row)
        assert (e["run"] or "") in row


@pytest.mark.parametrize("run", ["sr-1", "R0123456789ABCDE", "r0123"])
def test_a_run_that_is_no_run_id_is_a_usage_error(tmp_path, run):
    out = audit(run, "--bus", f"sqlite:///{tmp_path}/u.db")
    assert out.exit_code == 2, out.output
    assert "is not a run id" in out.output
    assert not (tmp_path / "u.db").exists()  # refused before the store was opened


def test_an_empty_trail_is_an_empty_list(tmp_path):
    out = audit("--bus", f"sqlite:///{tmp_path}/u.db", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == []
