"""Freezes: the fleet file's rules (validated on their lines), evaluated in simulated time — blackout
spans and dates, RRULEs across DST — which one blocks a run, and the stored form of chat freezes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.domain.commands import AllScope, KindScope, TargetScope
from shared.domain.fleet import parse_fleet
from shared.domain.freezes import (
    ActiveFreeze,
    FreezeRule,
    blocking,
    fleet_freezes,
    from_stored,
    to_stored,
    upcoming,
)
from shared.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")

BASE = """\
clouds: {huawei: {region: ap-southeast-1, project_id: p1}}
windows:
  sat-night: {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h, timezone: Asia/Seoul}
targets:
  - {name: cce-a, kind: cce, cluster_id: c0, window: sat-night}
"""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rule(**kw: object) -> FreezeRule:
    return FreezeRule.model_validate({"name": "f", "reason": "because", **kw})


# --- blackouts ----------------------------------------------------------------------------------


def test_a_blackout_span_is_in_force_from_start_until_before_end():
    r = rule(name="black-friday", start="2026-11-27T00:00:00Z", end="2026-11-30T23:59:59Z")
    assert fleet_freezes([r], utc("2026-11-26T23:59:59")) == []
    [f] = fleet_freezes([r], utc("2026-11-27T00:00:00"))
    assert (f.name, f.scope, f.scope_text, f.source, f.by) == (
        "black-friday",
        AllScope(),
        "all",
        "fleet",
        None,
    )
    assert (f.starts_at, f.ends_at) == (utc("2026-11-27T00:00:00"), utc("2026-11-30T23:59:59"))
    assert fleet_freezes([r], utc("2026-11-30T23:59:58"))
    assert fleet_freezes([r], utc("2026-11-30T23:59:59")) == [], "the end is outside"


def test_blackout_dates_run_whole_days_of_the_rules_timezone():
    # YAML reads the bare dates as dates: from 31 Dec 00:00 KST through the end of 1 Jan KST
    fleet = parse_fleet(
        BASE
        + "freezes:\n"
        + "  - {name: new-year, scope: kind:cce, start: 2026-12-31, end: 2027-01-01,"
        + " timezone: Asia/Seoul, reason: year-end}\n"
    )
    [r] = fleet.freezes
    assert r.span == (utc("2026-12-30T15:00:00"), utc("2027-01-01T15:00:00"))
    assert fleet_freezes(fleet.freezes, utc("2026-12-30T14:59:59")) == []
    assert [f.name for f in fleet_freezes(fleet.freezes, utc("2027-01-01T14:59:59"))] == ["new-year"]
    assert fleet_freezes(fleet.freezes, utc("2027-01-01T15:00:00")) == []
    # a wall-clock time without an offset is the rule's timezone too; an offset wins over it
    assert rule(start="2026-07-01T09:00:00", end="2026-07-01T10:00:00", timezone="Asia/Seoul").span[0] == utc(
        "2026-07-01T00:00:00"
    )
    assert rule(start="2026-07-01T09:00:00+02:00", end="2026-07-02", timezone="Asia/Seoul").span[0] == utc(
        "2026-07-01T07:00:00"
    )


# --- recurring ----------------------------------------------------------------------------------


def test_a_weekly_rrule_keeps_its_wall_clock_across_dst_and_lasts_elapsed_time():
    # Saturdays 22:00 Berlin for 8h; the night of 28/29 March 2026 clocks jump 02:00 -> 03:00
    r = rule(name="weekend", rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=22", duration="8h", timezone="Europe/Berlin")
    spans = upcoming([r], utc("2026-03-21T00:00:00"), utc("2026-04-05T00:00:00"))
    assert [
        (f.starts_at.astimezone(BERLIN).strftime("%m-%d %H:%M %Z"), f.ends_at - f.starts_at) for f in spans
    ] == [
        ("03-21 22:00 CET", timedelta(hours=8)),
        ("03-28 22:00 CET", timedelta(hours=8)),
        ("04-04 22:00 CEST", timedelta(hours=8)),
    ]
    # the DST night: 8 elapsed hours from 22:00 CET end at 07:00 CEST (06:00 wall clock + 1h jump)
    crossing = spans[1]
    assert crossing.ends_at == utc("2026-03-29T05:00:00")
    assert crossing.ends_at.astimezone(BERLIN).strftime("%H:%M %Z") == "07:00 CEST"
    assert [f.starts_at for f in fleet_freezes([r], utc("2026-03-29T04:59:59"))] == [
        utc("2026-03-28T21:00:00")
    ]
    assert fleet_freezes([r], utc("2026-03-29T05:00:00")) == []


def test_an_rrule_start_in_the_spring_forward_gap_happens_as_windows_decide():
    # 02:30 does not exist on 29 March 2026 in Berlin: the freeze starts 03:30 CEST, as a window would
    r = rule(rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30", duration="1h", timezone="Europe/Berlin")
    got = [
        f.starts_at.astimezone(BERLIN).strftime("%m-%d %H:%M %Z")
        for f in upcoming([r], utc("2026-03-28T00:00:00"), utc("2026-03-30T12:00:00"))
    ]
    assert got == ["03-28 02:30 CET", "03-29 03:30 CEST", "03-30 02:30 CEST"]


def test_quarter_end_freezes_the_last_day_of_each_quarter_in_seoul():
    r = rule(
        name="quarter-end",
        scope="kind:starrocks",
        rrule="FREQ=MONTHLY;BYMONTH=3,6,9,12;BYMONTHDAY=-1",
        duration="24h",
        timezone="Asia/Seoul",
    )
    spans = upcoming([r], utc("2026-01-01T00:00:00"), utc("2027-01-01T00:00:00"))
    assert [f.starts_at for f in spans] == [
        utc("2026-03-30T15:00:00"),  # 31 March 00:00 KST
        utc("2026-06-29T15:00:00"),
        utc("2026-09-29T15:00:00"),
        utc("2026-12-30T15:00:00"),
    ]
    assert spans[0].scope == KindScope("starrocks")
    # an occurrence that began before the span still overlaps it
    assert [f.starts_at for f in upcoming([r], utc("2026-03-31T12:00:00"), utc("2026-03-31T13:00:00"))] == [
        utc("2026-03-30T15:00:00")
    ]


def test_overlapping_occurrences_are_one_freeze_in_force_the_one_ending_last():
    r = rule(rrule="FREQ=DAILY;BYHOUR=0", duration="36h")
    assert len(upcoming([r], utc("2026-05-02T06:00:00"), utc("2026-05-02T06:00:01"))) == 2
    [f] = fleet_freezes([r], utc("2026-05-02T06:00:00"))
    assert (f.starts_at, f.ends_at) == (utc("2026-05-02T00:00:00"), utc("2026-05-03T12:00:00"))


# --- blocking -----------------------------------------------------------------------------------


def _f(name: str, scope, ends: str, starts: str = "2026-05-01T00:00:00") -> ActiveFreeze:
    text = {AllScope(): "all"}.get(scope) or (
        scope.name if isinstance(scope, TargetScope) else f"kind:{scope.kind}"
    )
    return ActiveFreeze(name, scope, text, utc(starts), utc(ends), "r", "chat", "slack:T1/U1")


def test_blocking_is_the_covering_freeze_that_ends_last():
    freezes = [
        _f("short-all", AllScope(), "2026-05-02T00:00:00"),
        _f("long-kafka", KindScope("ncloud-kafka"), "2026-06-01T00:00:00"),
        _f("cce-a-week", TargetScope("cce-a"), "2026-05-08T00:00:00"),
    ]
    facts = {"kind": "cce", "window": "sat-night", "wave": 0}
    assert blocking(freezes, target="cce-a", **facts).name == "cce-a-week"  # type: ignore[union-attr]
    assert blocking(freezes, target="cce-b", **facts).name == "short-all"  # type: ignore[union-attr]
    assert blocking(freezes[2:], target="cce-b", **facts) is None
    # with ``now``, freezes not in force are ignored
    late = utc("2026-05-03T00:00:00")
    assert blocking(freezes, target="cce-b", now=late, **facts) is None
    assert blocking(freezes, target="cce-a", now=utc("2026-05-08T00:00:00"), **facts) is None


# --- the stored form ----------------------------------------------------------------------------


def test_stored_chat_freezes_round_trip():
    f = ActiveFreeze(
        "chat-1", KindScope("cce"), "kind:cce", utc("2026-05-01T10:00:00"), utc("2026-05-01T14:00:00"),
        "incident 42", "chat", "slack:T0SRE/U1",
    )  # fmt: skip
    doc = to_stored(f)
    assert doc == {
        "name": "chat-1",
        "scope": "kind:cce",
        "starts_at": "2026-05-01T10:00:00+00:00",
        "ends_at": "2026-05-01T14:00:00+00:00",
        "reason": "incident 42",
        "by": "slack:T0SRE/U1",
        "source": "chat",
    }
    assert from_stored(doc) == f
    # the control code may key it by id and leave source out; chat is the default
    legacy = {k: v for k, v in doc.items() if k not in ("name", "source")} | {"id": "chat-1"}
    assert from_stored(legacy) == f


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": None}, "no name"),
        ({"scope": "kind:mainframe"}, "unknown kind"),
        ({"ends_at": "tomorrow"}, "ISO"),
        ({"starts_at": "2026-05-01T10:00:00"}, "aware"),
        ({"source": "email"}, "unknown source"),
    ],
)
def test_a_malformed_stored_freeze_is_a_value_error(change, message):
    doc = to_stored(_f("x", AllScope(), "2026-05-02T00:00:00")) | change
    with pytest.raises(ValueError, match=message):
        from_stored(doc)


# --- the fleet loader ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        ("{name: x, reason: r}", "freezes[0]", "give start and end (a blackout) or rrule and duration"),
        ("{name: x, reason: r, start: 2026-01-01}", "freezes[0]", "needs both start and end"),
        ("{name: x, reason: r, start: 2026-01-02, end: 2026-01-01}", "freezes[0]", "must be after start"),
        (
            "{name: x, reason: r, start: 2026-01-01T10:00:00Z, end: 2026-01-01T10:00:00Z}",
            "freezes[0]",
            "must be after start",
        ),
        (
            '{name: x, reason: r, start: 2026-01-01, end: 2026-01-02, rrule: "FREQ=DAILY", duration: 1h}',
            "freezes[0]",
            "not both",
        ),
        ('{name: x, reason: r, rrule: "FREQ=DAILY"}', "freezes[0]", "needs both rrule and duration"),
        ('{name: x, reason: r, rrule: "FREQ=DAILY", duration: 0s}', "freezes[0]", "longer than zero"),
        ('{name: x, reason: r, rrule: "FREQ=SOMETIMES", duration: 1h}', "freezes[0].rrule", "not an RRULE"),
        (
            '{name: x, reason: r, rrule: "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", duration: 1h}',
            "freezes[0].rrule",
            "never occurs",
        ),
        (
            '{name: x, reason: r, rrule: "FREQ=DAILY", duration: 1h, timezone: Mars/Olympus}',
            "freezes[0].timezone",
            "unknown IANA timezone",
        ),
        (
            "{name: x, reason: r, scope: 'kind:mainframe', start: 2026-01-01, end: 2026-01-02}",
            "freezes[0].scope",
            "unknown kind",
        ),
        (
            "{name: x, reason: r, scope: 'cce-a cce-b', start: 2026-01-01, end: 2026-01-02}",
            "freezes[0].scope",
            "not one scope",
        ),
        (
            "{name: x, reason: r, scope: cce-zz, start: 2026-01-01, end: 2026-01-02}",
            "freezes[0].scope",
            "unknown target 'cce-zz'",
        ),
        (
            "{name: x, reason: r, scope: 'window:sun-night', start: 2026-01-01, end: 2026-01-02}",
            "freezes[0].scope",
            "unknown window 'sun-night' (windows: sat-night)",
        ),
        ("{name: x, start: 2026-01-01, end: 2026-01-02}", "freezes[0].reason", "Field required"),
    ],
)
def test_the_fleet_refuses_a_bad_freeze_naming_line_and_field(entry, where, message):
    text = (
        BASE
        + "freezes:\n  - {name: fine, reason: ok, start: 2026-01-01, end: 2026-01-02}\n  - "
        + entry
        + "\n"
    )
    where = where.replace("freezes[0]", "freezes[1]")
    with pytest.raises(ConfigError) as info:
        parse_fleet(text, "fleet.yaml")
    err = info.value
    assert err.message.startswith(f"{where}:") and message in err.message, err
    assert err.where == f"fleet.yaml:{BASE.count(chr(10)) + 3}"


def test_freeze_names_are_unique():
    text = BASE + (
        "freezes:\n"
        "  - {name: q, reason: r, start: 2026-01-01, end: 2026-01-02}\n"
        "  - {name: q, reason: r, start: 2026-02-01, end: 2026-02-02}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_fleet(text, "fleet.yaml")
    assert info.value.message == "freezes[1].name: duplicate freeze name 'q' (also freezes[0])"
    assert info.value.where == f"fleet.yaml:{BASE.count(chr(10)) + 3}"


def test_the_json_schema_takes_freezes_and_grants_as_an_editor_sees_them():
    import jsonschema
    import yaml

    from shared.domain.fleet import Fleet

    validator = jsonschema.Draft202012Validator(Fleet.model_json_schema())
    doc = yaml.safe_load(BASE)
    # an editor's YAML server reads timestamps and dates as strings
    doc["freezes"] = [
        {"name": "bf", "scope": "all", "start": "2026-11-27", "end": "2026-11-30", "reason": "peak"},
        {"name": "q", "rrule": "FREQ=MONTHLY;BYMONTHDAY=-1", "duration": "24h", "reason": "quarter"},
        {"name": "x", "start": "2026-11-27T00:00:00Z", "end": "2026-11-28T00:00:00+09:00", "reason": "r"},
    ]
    doc["rbac"] = [{"name": "leads", "role": "approver", "slack": ["T0SRE/U024BE7LH"]}]
    assert [e.message for e in validator.iter_errors(doc)] == []
    doc["freezes"][0]["stat"] = "2026-11-27"
    doc["rbac"][0]["slack"] = ["U024BE7LH"]
    paths = sorted("/".join(map(str, e.absolute_path)) for e in validator.iter_errors(doc))
    assert paths == ["freezes/0", "rbac/0/slack/0"]
