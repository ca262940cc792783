"""`upshift plan` shows, per target taking a release, the approval its run needs and the fleet
freezes overlapping the window occurrence it would start in; `upshift fleet check` reports what
the rbac:/freezes:/approval blocks get wrong (run as a user runs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shared.ops.plan import plan

ROOT = Path(__file__).resolve().parents[2]

FLEET = """\
clouds: {huawei: {region: ap-southeast-1, project_id: p1}}
windows:
  sat-night: {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h, timezone: Asia/Seoul}
targets:
  - {name: cce-canary, kind: cce, cluster_id: c0, window: sat-night, wave: 0, version: v1.28.0-r0}
  - {name: cce-prod, kind: cce, cluster_id: c1, window: sat-night, wave: 1, version: v1.28.0-r0}
  - {name: cce-free, kind: cce, cluster_id: c2, wave: 2, version: v1.28.0-r0}
  - {name: cce-new, kind: cce, cluster_id: c3, window: sat-night, wave: 0, version: v1.30.0-r0}
rbac:
  - {name: sre-leads, role: approver, slack: [T0SRE/U1, T0SRE/U2]}
policies:
  - {match: {name: cce-prod}, approval: {min_approvals: 1}}
waves:
  approval:
    0: {approvers: [sre-leads], min_approvals: 2, expires: 12h}
freezes:
  # overlaps Saturday's window (02:00-06:00 KST) of every sat-night target
  - {name: db-migration, scope: "window:sat-night", start: "2026-06-13T03:00:00+09:00",
     end: "2026-06-13T04:00:00+09:00", reason: schema migration}
  # Saturdays 05:00-07:00 KST, wave 1 only: overlaps the last hour of the window
  - {name: backups, scope: "wave:1", rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=5", duration: 2h,
     timezone: Asia/Seoul, reason: weekly backup}
  # in force now, for the windowless target
  - {name: free-hold, scope: cce-free, start: 2026-06-10, end: 2026-06-10, reason: audit week}
  # after the next occurrence: not shown
  - {name: later, scope: all, start: 2026-06-20, end: 2026-06-21, reason: not yet}
  - {name: starrocks-only, scope: "kind:starrocks", rrule: "FREQ=DAILY", duration: 24h, reason: other kind}
"""
NOW = "2026-06-10T12:00:00Z"  # a Wednesday; the next window opens Sat 13 June 02:00 KST


@pytest.fixture
def fleet(tmp_path: Path) -> str:
    p = tmp_path / "fleet.yaml"
    p.write_text(FLEET)
    return str(p)


def _plan(fleet: str, *extra: str):
    r = CliRunner().invoke(plan, ["--fleet", fleet, "--release", "cce=v1.29.0-r0", "--now", NOW, *extra])
    assert r.exit_code == 0, r.output
    return r.output


def test_json_shows_the_approval_each_run_needs_and_the_freezes_of_its_window(fleet):
    rows = {t["target"]: t for t in json.loads(_plan(fleet, "--json"))["releases"][0]["targets"]}
    canary, prod, free, new = rows["cce-canary"], rows["cce-prod"], rows["cce-free"], rows["cce-new"]
    assert canary["take"] and prod["take"] and free["take"] and not new["take"]
    # wave 0's rule; cce-prod's policy wins over (absent) wave 1's; none without one
    assert canary["approval"] == {
        "min_approvals": 2,
        "approvers": ["sre-leads"],
        "expires": "12h",
        "prevent_self_approval": True,
    }
    assert prod["approval"] == {
        "min_approvals": 1,
        "approvers": [],
        "expires": None,
        "prevent_self_approval": True,
    }
    assert free["approval"] is None
    assert new["approval"] is None and new["freezes"] == [], "a target taking nothing needs nothing"
    assert canary["freezes"] == [
        {
            "name": "db-migration",
            "scope": "window:sat-night",
            "starts_at": "2026-06-12T18:00:00+00:00",
            "ends_at": "2026-06-12T19:00:00+00:00",
            "reason": "schema migration",
            "by": None,
            "source": "fleet",
        }
    ]
    assert [(f["name"], f["starts_at"], f["ends_at"]) for f in prod["freezes"]] == [
        ("db-migration", "2026-06-12T18:00:00+00:00", "2026-06-12T19:00:00+00:00"),
        ("backups", "2026-06-12T20:00:00+00:00", "2026-06-12T22:00:00+00:00"),
    ]
    assert [(f["name"], f["ends_at"]) for f in free["freezes"]] == [
        ("free-hold", "2026-06-11T00:00:00+00:00")
    ]


def test_the_table_has_an_approval_column_and_a_line_per_freeze(fleet):
    lines = _plan(fleet).splitlines()
    assert "APPROVAL" in lines[1]
    at = {line.split()[0]: i for i, line in enumerate(lines) if line.startswith("  cce-")}
    assert "2 of sre-leads (expires 12h)" in lines[at["cce-canary"]]
    assert "1 approver " in lines[at["cce-prod"]]
    assert lines[at["cce-canary"] + 1] == (
        "    frozen: db-migration (window:sat-night) 2026-06-12T18:00:00+00:00 .. 2026-06-12T19:00:00+00:00:"
        " schema migration"
    )
    prod_freezes = lines[at["cce-prod"] + 1 : at["cce-free"]]
    assert [line.split()[1] for line in prod_freezes] == ["db-migration", "backups"]
    assert "free-hold (cce-free)" in lines[at["cce-free"] + 1]
    assert not any("later" in line or "starrocks-only" in line for line in lines)


def test_a_window_open_now_shows_the_freezes_of_the_rest_of_it(fleet):
    # 03:30 KST on the Saturday: db-migration (03:00-04:00) is on, backups (05:00-) still to come
    r = CliRunner().invoke(
        plan, ["--fleet", fleet, "--release", "cce=v1.29.0-r0", "--now", "2026-06-12T18:30:00Z", "--json"]
    )
    rows = {t["target"]: t for t in json.loads(r.output)["releases"][0]["targets"]}
    assert rows["cce-prod"]["opens_at"] == "2026-06-12T17:00:00+00:00"
    assert [f["name"] for f in rows["cce-prod"]["freezes"]] == ["db-migration", "backups"]
    # at 04:30 KST the migration is over: only what is left of the window counts
    r = CliRunner().invoke(
        plan, ["--fleet", fleet, "--release", "cce=v1.29.0-r0", "--now", "2026-06-12T19:30:00Z", "--json"]
    )
    rows = {t["target"]: t for t in json.loads(r.output)["releases"][0]["targets"]}
    assert [f["name"] for f in rows["cce-prod"]["freezes"]] == ["backups"]
    assert rows["cce-free"]["freezes"] == [], "free-hold ended at midnight"


BAD = """\
clouds: {huawei: {region: ap-southeast-1, project_id: p1}}
windows:
  sat-night: {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h}
targets:
  - {name: cce-a, kind: cce, cluster_id: c0, window: sat-night}
rbac:
  - {name: leads, role: approver, tokens: [ghost]}
waves:
  approval:
    0: {approvers: [nobody]}
freezes:
  - {name: q, scope: "kind:cce", rrule: "FREQ=MONTHLY", reason: r}
  - {name: x, scope: cce-zz, start: 2026-01-01, end: 2026-01-02, reason: r}
"""


def test_fleet_check_reports_every_rbac_freeze_and_approval_mistake_on_its_line(tmp_path: Path):
    p = tmp_path / "fleet.yaml"
    p.write_text(BAD)
    r = subprocess.run(
        [sys.executable, "-m", "shared.ops.cli", "fleet", "check", str(p)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    # the first pass (field validation) finds the freeze's shape; the fleet-wide references come once
    # the models themselves are sound, so fix-and-rerun shows them next
    assert lines == [
        f"{p}:12: freezes[0]: Value error, a recurring freeze needs both rrule and duration",
        f"{p}: 1 error",
    ]
    p.write_text(BAD.replace('rrule: "FREQ=MONTHLY"', 'rrule: "FREQ=MONTHLY", duration: 24h'))
    r = subprocess.run(
        [sys.executable, "-m", "shared.ops.cli", "fleet", "check", str(p)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == [
        f"{p}:7: rbac[0].tokens[0]: unknown token 'ghost' (auth.tokens: none defined)",
        f"{p}:10: waves.approval.0.approvers[0]: unknown rbac grant 'nobody' (grants: leads)",
        f"{p}:13: freezes[1].scope: unknown target 'cce-zz'",
        f"{p}: 3 errors",
    ]
