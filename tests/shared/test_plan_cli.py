"""`upshift plan`: the dry run prints what plan_upgrades would decide, with the next window."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from shared.ops.plan import plan

FLEET = """
clouds: {huawei: {region: ap-southeast-1, project_id: p1}}
windows:
  sat-night: {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h, timezone: Asia/Seoul, cutoff: 45m}
targets:
  - {name: cce-canary, kind: cce, cluster_id: c0, window: sat-night, wave: 0, version: v1.28.0-r0}
  - {name: cce-prod, kind: cce, cluster_id: c1, window: sat-night, wave: 1, version: v1.29.0-r0}
  - {name: cce-free, kind: cce, cluster_id: c2, version: v1.28.0-r0}
  - {name: cce-frozen, kind: cce, cluster_id: c3, version: v1.28.0-r0, labels: {tier: critical}}
  - {name: sr-a, kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: 5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17, version: 3.3.2, window: sat-night}
policies:
  - {match: {labels: {tier: critical}}, frozen: true}
  - {match: {kind: starrocks}, track: "3.3", min_release_age: 7d}
"""
NOW = "2026-06-10T12:00:00Z"  # a Wednesday


@pytest.fixture
def fleet(tmp_path):
    p = tmp_path / "fleet.yaml"
    p.write_text(FLEET)
    return str(p)


def _run(*args: str):
    return CliRunner().invoke(plan, list(args))


def test_json_says_who_takes_it_where_and_why_not(fleet):
    r = _run(
        "--fleet",
        fleet,
        "--release",
        "cce=v1.29.0-r0",
        "--release",
        "starrocks=3.3.5@2026-06-08T00:00:00Z",
        "--now",
        NOW,
        "--json",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    cce, sr = out["releases"]
    rows = {t["target"]: t for t in cce["targets"]}
    assert rows["cce-canary"]["take"] and rows["cce-canary"]["opens_at_local"] == "2026-06-13T02:00:00+09:00"
    assert rows["cce-canary"]["opens_at"] == "2026-06-12T17:00:00+00:00"
    assert rows["cce-prod"]["code"] == "not-newer"
    assert (
        rows["cce-free"]["take"]
        and rows["cce-free"]["opens_at"] is None
        and "no window" in rows["cce-free"]["reason"]
    )
    assert rows["cce-frozen"]["code"] == "frozen"
    assert rows["sr-a"]["code"] == "product"
    [soaking] = [t for t in sr["targets"] if t["target"] == "sr-a"]
    assert soaking["code"] == "soak" and soaking["soak_until"] == "2026-06-15T00:00:00+00:00"
    # the window it would start in comes after the soak
    assert soaking["opens_at_local"] == "2026-06-20T02:00:00+09:00"


def test_latest_release_wins_in_the_dry_run_too(fleet):
    r = _run(
        "--fleet", fleet, "--release", "cce=v1.29.0-r0", "--release", "cce=v1.30.1-r0", "--now", NOW, "--json"
    )
    first, second = json.loads(r.output)["releases"]
    assert {t["target"]: t["code"] for t in first["targets"]}["cce-canary"] == "superseded"
    assert {t["target"]: t["code"] for t in second["targets"]}["cce-canary"] == "planned"


def test_table(fleet):
    r = _run("--fleet", fleet, "--release", "cce=v1.29.0-r0", "--now", NOW)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("cce v1.29.0-r0")
    assert "TARGET" in lines[1] and "NEXT OPEN" in lines[1]
    canary = next(line for line in lines if "cce-canary" in line)
    assert "takes it" in canary and "2026-06-13T02:00:00+09:00" in canary
    assert "frozen by policy" in next(line for line in lines if "cce-frozen" in line)


@pytest.mark.parametrize("bad", ["cce", "=v1.29", "cce=", "cce=v1@yesterday"])
def test_bad_release_is_a_usage_error_naming_the_option(fleet, bad):
    r = _run("--fleet", fleet, "--release", bad, "--now", NOW)
    assert r.exit_code == 2
    assert "--release" in r.output


def test_bad_now_is_a_usage_error(fleet):
    r = _run("--fleet", fleet, "--release", "cce=v1.29", "--now", "soon")
    assert r.exit_code == 2 and "--now" in r.output
