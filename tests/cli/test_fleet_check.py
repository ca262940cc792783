"""`upshift fleet check` and `upshift fleet schema`, and the fleet-file errors of `upshift plan`,
run as a user runs them: `python -m shared.ops.cli` in a subprocess (exit codes, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from shared.ops.demo import build_demo_fleet

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
clouds: {huawei: {region: ap-southeast-1, project_id: p1}, ncloud: {region: KR}}
windows:
  sat-night: {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h, timezone: Asia/Seoul, cutoff: 45m}
policies:
  - {match: {kind: cce}, track: v1.29, min_release_age: 7d}
targets:
  - {name: cce-a, kind: cce, cluster_id: c0, window: sat-night, version: v1.28.0-r0}
  - {name: cce-b, kind: cce, cluster_id: 22, wave: 1}
  - {name: kafka-a, kind: ncloud-kafka, cluster: 3432149, window: sat-night}
"""

#: Four mistakes, one a line: a bad RRULE, a negative wave, an unknown window, a duplicate name.
BAD = """\
clouds: {huawei: {region: ap-southeast-1, project_id: p1}}
windows:
  sat-night: {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h}
  sometimes: {rrule: "FREQ=SOMETIMES", duration: 4h}
targets:
  - {name: cce-a, kind: cce, cluster_id: c0, wave: -1}
"""


def upshift(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "shared.ops.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def write(tmp_path: Path, text: str | bytes, name: str = "fleet.yaml") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def test_check_a_good_file_exits_0_with_a_one_line_summary(tmp_path: Path):
    r = upshift("fleet", "check", str(write(tmp_path, GOOD)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"{tmp_path / 'fleet.yaml'}: ok — 3 targets (2 cce, 1 ncloud-kafka), 1 window, 1 policy"
    ]


def test_check_lists_every_error_with_file_line_and_field_and_exits_2(tmp_path: Path):
    p = write(tmp_path, BAD)
    r = upshift("fleet", "check", str(p))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith(
        f"{p}:4: windows.sometimes.rrule: Value error, 'FREQ=SOMETIMES' is not an RRULE"
    )
    assert lines[1] == f"{p}:6: targets[0].wave: Input should be greater than or equal to 0"
    assert lines[2:] == [f"{p}: 2 errors"]


def test_check_names_the_target_line_of_cross_reference_errors(tmp_path: Path):
    p = write(
        tmp_path,
        GOOD
        + "  - {name: cce-a, kind: cce, cluster_id: c9}\n  - {name: x, kind: cce, cluster_id: c8, window: sun}\n",
    )
    r = upshift("fleet", "check", str(p))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"{p}:10: targets[3].name: duplicate target name 'cce-a' (also targets[0])",
        f"{p}:11: targets[4].window: unknown window 'sun' (windows: sat-night)",
        f"{p}: 2 errors",
    ]


@pytest.mark.parametrize(
    ("content", "where", "why"),
    [
        (
            GOOD.encode() + b"  - {name: caf\xc3, kind: cce, cluster_id: c9}\n",
            ":10:",
            "not UTF-8 text (byte 0xc3",
        ),
        (GOOD + "policies: []\n", ":10:", "duplicate key 'policies' on lines 4 and 10"),
        ("targets: [\n", ":2:", "not valid YAML"),
    ],
)
def test_check_refuses_unreadable_files_in_one_line_exit_2(tmp_path: Path, content, where, why):
    p = write(tmp_path, content)
    r = upshift("fleet", "check", str(p))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{p}{where}") and why in first, r.stderr


def test_check_a_missing_file_or_a_directory_exits_2(tmp_path: Path):
    r = upshift("fleet", "check", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    r = upshift("fleet", "check", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr and "Traceback" not in r.stderr


def test_schema_is_json_schema_that_takes_good_files_and_flags_typos(tmp_path: Path):
    r = upshift("fleet", "schema")
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    # the files that load validate as the editor sees them: durations "4h", numeric ids
    demo = build_demo_fleet(5, "http://127.0.0.1:9", "p1").fleet_yaml
    for text in (GOOD, demo):
        assert [e.message for e in validator.iter_errors(yaml.safe_load(text))] == []
    # and what a person mistypes is flagged where they type it
    doc = yaml.safe_load(GOOD)
    doc["targets"][0]["windw"] = "sat-night"
    doc["windows"]["sat-night"]["duration"] = "four hours"
    doc["targets"][1]["kind"] = "eks"
    paths = sorted("/".join(map(str, e.absolute_path)) for e in validator.iter_errors(doc))
    assert paths == ["targets/0", "targets/1/kind", "windows/sat-night/duration"]


def test_plan_exits_2_on_a_bad_fleet_naming_file_line_and_window(tmp_path: Path):
    p = write(tmp_path, GOOD.replace("BYHOUR=2", "BYHOUR=25"))
    r = upshift("plan", "--fleet", str(p), "--release", "cce=v1.29.1-r0")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert f"{p}:3: windows.sat-night.rrule: " in r.stderr and "hour must be in 0..23" in r.stderr
    r = upshift("plan", "--fleet", str(write(tmp_path, b"targets: [\xff]\n")), "--release", "cce=v1.29")
    assert r.returncode == 2 and "not UTF-8" in r.stderr and "Traceback" not in r.stderr
