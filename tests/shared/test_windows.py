"""Maintenance windows: RRULE and cron in local time, across DST, and the stage gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.domain.fleet import Window, parse_fleet
from shared.domain.windows import BadWindow, gate, next_open, occurrences, window_at
from shared.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _local_opens(window: Window, start: str, end: str, tz: ZoneInfo) -> list[str]:
    return [
        o.opens_at.astimezone(tz).strftime("%m-%d %H:%M %Z")
        for o in occurrences(window, utc(start), utc(end))
    ]


def test_weekly_rrule_in_seoul():
    w = Window(rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration="4h", timezone="Asia/Seoul", cutoff="45m")
    occ = window_at(w, utc("2026-03-06T18:30:00"))  # Saturday 03:30 KST
    assert occ is not None
    assert (occ.opens_at, occ.closes_at, occ.cutoff_at) == (
        utc("2026-03-06T17:00:00"),
        utc("2026-03-06T21:00:00"),
        utc("2026-03-06T20:15:00"),
    )
    assert window_at(w, utc("2026-03-06T21:00:00")) is None, "closes_at is outside"
    assert next_open(w, utc("2026-03-06T18:30:00")).opens_at == utc("2026-03-13T17:00:00")


@pytest.mark.parametrize("spec", [{"rrule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=30"}, {"cron": "30 2 * * *"}])
def test_berlin_spring_forward_and_fall_back(spec):
    w = Window(**spec, duration="1h", timezone="Europe/Berlin")
    # 2026-03-29: clocks jump 02:00 -> 03:00; 02:30 does not exist and the window opens at 03:30 CEST
    assert _local_opens(w, "2026-03-27T12:00:00", "2026-03-30T12:00:00", BERLIN) == [
        "03-28 02:30 CET",
        "03-29 03:30 CEST",
        "03-30 02:30 CEST",
    ]
    spring = window_at(w, utc("2026-03-29T01:45:00"))
    assert spring.opens_at == utc("2026-03-29T01:30:00") and spring.closes_at - spring.opens_at == timedelta(
        hours=1
    )
    # 2026-10-25: 02:00-03:00 happens twice; the window opens once, at the first 02:30 (CEST)
    assert _local_opens(w, "2026-10-23T12:00:00", "2026-10-26T12:00:00", BERLIN) == [
        "10-24 02:30 CEST",
        "10-25 02:30 CEST",
        "10-26 02:30 CET",
    ]
    assert window_at(w, utc("2026-10-25T01:45:00")) is None, "the second 02:45 (CET) is after the window"
    assert next_open(w, utc("2026-10-24T12:00:00")).opens_at == utc("2026-10-25T00:30:00")


def test_new_york_cron_across_both_changes():
    w = Window(cron="30 1 * * *", duration="3h", timezone="America/New_York", cutoff="1h")
    # 2026-03-08 spring forward at 02:00: 01:30 EST exists, the 3h window lasts 3 real hours
    occ = window_at(w, utc("2026-03-08T07:00:00"))
    assert occ.opens_at == utc("2026-03-08T06:30:00") and occ.closes_at == utc("2026-03-08T09:30:00")
    assert occ.cutoff_at == utc("2026-03-08T08:30:00")
    # 2026-11-01 fall back: 01:30 happens twice; the window opens at the first (EDT, 05:30 UTC) only
    opens = [o.opens_at for o in occurrences(w, utc("2026-11-01T00:00:00"), utc("2026-11-02T00:00:00"))]
    assert opens == [utc("2026-11-01T05:30:00")]
    assert next_open(w, utc("2026-11-01T05:30:00")).opens_at == utc("2026-11-02T06:30:00")


def test_bad_rules_are_typed_errors():
    # (a fleet file cannot hold one — see below — but a window built in code unchecked can)
    bad = Window.model_construct(rrule="FREQ=SOMETIMES", cron=None, duration=timedelta(hours=1))
    with pytest.raises(BadWindow, match="not an RRULE"):
        window_at(bad, utc("2026-01-01T00:00:00"))
    bad = Window.model_construct(rrule=None, cron="61 * * * *", duration=timedelta(hours=1))
    with pytest.raises(BadWindow, match="not a cron"):
        window_at(bad, utc("2026-01-01T00:00:00"))


_WINDOW_FLEET = """\
clouds: {{huawei: {{region: r, project_id: p}}}}
windows:
  fine: {{cron: "0 2 * * 6", duration: 4h}}
  sat-night: {{{spec}, duration: 4h, timezone: Asia/Seoul}}
targets:
  - {{name: a, kind: cce, cluster_id: c, window: sat-night}}
"""


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ('rrule: "FREQ=SOMETIMES"', "not an RRULE"),
        ('rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=25"', "not an RRULE: hour must be in 0..23"),
        ('rrule: "FREQ=WEEKLY;BYDAY=XX"', "not an RRULE"),
        ('cron: "61 2 * * 6"', "not a cron expression"),
        ('cron: "@sometimes"', "not a cron expression"),
        # valid, but never occurs: the window would never open
        ('rrule: "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"', "never occurs"),
        ('rrule: "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"', "never occurs"),
        ('rrule: "FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31"', "never occurs"),
        ('rrule: "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29"', "never occurs"),  # 2018, 2022, …
        ('rrule: "FREQ=WEEKLY;COUNT=0"', "never occurs"),
        ('rrule: "FREQ=DAILY;UNTIL=20100101T000000"', "never occurs"),
        ('cron: "30 2 31 2 *"', "never occurs"),
    ],
)
def test_a_bad_or_never_occurring_schedule_is_refused_at_load_naming_file_line_and_window(spec, why):
    with pytest.raises(ConfigError) as caught:
        parse_fleet(_WINDOW_FLEET.format(spec=spec), "fleet.yaml")
    assert caught.value.where == "fleet.yaml:4", caught.value
    field = spec.split(":")[0]
    assert caught.value.message.startswith(f"windows.sat-night.{field}: "), caught.value
    assert why in caught.value.message


@pytest.mark.parametrize(
    "spec",
    [
        'rrule: "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"',  # leap days only: rare, but it occurs
        'rrule: "FREQ=MONTHLY;BYMONTHDAY=31"',
        'rrule: "FREQ=MONTHLY;BYDAY=5SA"',
        'rrule: "DTSTART:20260103T020000\\nRRULE:FREQ=WEEKLY;COUNT=3"',
        'cron: "0 0 29 2 *"',
        'cron: "@daily"',
    ],
)
def test_a_rare_schedule_still_loads(spec):
    parse_fleet(_WINDOW_FLEET.format(spec=spec), "fleet.yaml")


FLEET = parse_fleet(
    """
clouds: {huawei: {region: r, project_id: p}}
windows:
  night: {rrule: "FREQ=DAILY;BYHOUR=2", duration: 2h, timezone: UTC, cutoff: 30m}
targets:
  - {name: a, kind: cce, cluster_id: c, window: night}
  - {name: free, kind: cce, cluster_id: d}
""",
)


@pytest.mark.parametrize(
    ("now", "expected", "ok", "retry", "why"),
    [
        ("2026-06-10T02:00:00", "20m", True, None, "open until"),
        ("2026-06-10T03:10:00", "20m", True, None, "open until"),  # exactly fits the 03:30 cutoff
        ("2026-06-10T03:11:00", "20m", False, "2026-06-11T02:00:00", "only 19m left"),
        ("2026-06-10T03:30:00", "1m", False, "2026-06-11T02:00:00", "past its cutoff"),
        ("2026-06-10T05:00:00", "1m", False, "2026-06-11T02:00:00", "closed"),
        ("2026-06-10T02:00:00", "2h", False, None, "longer than window"),
    ],
)
def test_gate(now, expected, ok, retry, why):
    from shared.domain.fleet import parse_duration

    g = gate(FLEET, "a", utc(now), parse_duration(expected))
    assert g.ok is ok
    assert g.retry_at == (utc(retry) if retry else None)
    assert why in g.reason


def test_a_target_without_a_window_is_always_open():
    assert gate(FLEET, FLEET.target("free"), utc("2026-06-10T12:00:00"), timedelta(hours=30)).ok
