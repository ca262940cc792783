"""The window cache (``shared.domain.windows._span``): the same answers as the uncached
computation, for any sequence of instants — inside one occurrence, across its cutoff and close,
in closed gaps, across DST changes, with overlapping occurrences — and no recomputation while
the instants stay in one span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import windows
from shared.domain.fleet import Fleet, Window, parse_fleet
from shared.domain.windows import Gate, gate, next_open, window_at

#: Windows with DST changes (Berlin, New York), overlapping occurrences (30h every day, 9 days
#: every week), a gap-start (02:30 Berlin), cron, a weekly rule (not movable: iterated from its anchor).
WINDOWS = [
    Window(rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration="4h", timezone="Asia/Seoul", cutoff="45m"),
    Window(rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30", duration="1h", timezone="Europe/Berlin"),
    Window(cron="30 1 * * *", duration="2h", timezone="America/New_York", cutoff="30m"),
    Window(rrule="FREQ=DAILY;BYHOUR=22", duration="30h", timezone="Europe/Berlin", cutoff="1h"),
    Window(
        rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0;BYSECOND=0", duration="216h", timezone="Asia/Seoul"
    ),
    Window(rrule="DTSTART:20260301T000000\nRRULE:FREQ=HOURLY;INTERVAL=5", duration="90m", cutoff="10m"),
]
#: Around both 2026 DST changes in Europe and the US.
BASES = [datetime(2026, 3, 26, tzinfo=UTC), datetime(2026, 10, 22, tzinfo=UTC)]

#: Gaps between successive instants (s): mostly within an occurrence or the next one, sometimes
#: days; negative ones go back in time.
gaps = st.lists(st.integers(min_value=-6 * 3600, max_value=30 * 3600), min_size=1, max_size=20)


def _cold_gate(fleet: Fleet, now: datetime, expected: timedelta) -> Gate:
    """The gate with the cache emptied first: the same code from no state, so only what the
    cache carries from earlier instants can make the two differ."""
    kept = dict(windows._SPANS)  # put back after: the warm path's cache carries on across instants
    windows._SPANS.clear()
    try:
        return gate(fleet, "k", now, expected)
    finally:
        windows._SPANS.clear()
        windows._SPANS.update(kept)


@settings(max_examples=60, deadline=None)
@given(
    w=st.sampled_from(range(len(WINDOWS))),
    base=st.sampled_from(BASES),
    steps=gaps,
    expected_min=st.integers(min_value=1, max_value=300),
)
def test_cached_answers_are_the_uncached_ones(
    w: int, base: datetime, steps: list[int], expected_min: int
) -> None:
    window = WINDOWS[w]
    fleet = parse_fleet(
        "clouds: {ncloud: {region: KR, access_key_env: A, secret_key_env: B}}\n"
        "windows: {w: {rrule: 'FREQ=DAILY', duration: 1h}}\n"
        "targets: [{name: k, kind: ncloud-kafka, cluster: '1', window: w}]\n"
    ).model_copy(update={"windows": {"w": window}})
    expected = timedelta(minutes=expected_min)
    now = base
    for step in steps:
        now += timedelta(seconds=step)
        assert window_at(window, now) == windows._window_at(window, now)
        assert next_open(window, now) == windows._next_open(window, now)
        g: Gate = gate(fleet, "k", now, expected)
        cold = _cold_gate(fleet, now, expected)
        assert (g.ok, g.retry_at, g.reason) == (cold.ok, cold.retry_at, cold.reason)


def test_a_walk_through_every_window_gets_the_uncached_answers() -> None:
    # every 71 minutes for 2 days from each base: occurrences' insides, cutoffs, closes, the
    # next opening inside an overlapping occurrence, DST nights
    for window in WINDOWS:
        for base in BASES:
            for i in range(0, 2 * 24 * 60, 71):
                now = base + timedelta(minutes=i)
                assert window_at(window, now) == windows._window_at(window, now), (window, now)
                if i % 3 == 0:
                    assert next_open(window, now) == windows._next_open(window, now), (window, now)


def test_instants_within_one_occurrence_compute_nothing(monkeypatch) -> None:
    window = WINDOWS[0]  # weekly: the expensive kind
    opens = window_at(window, datetime(2026, 3, 6, 18, 30, tzinfo=UTC))
    assert opens is not None
    computed: list[datetime] = []
    real = windows._window_at

    def counting(w: Window, now: datetime) -> windows.OpenWindow | None:
        computed.append(now)
        return real(w, now)

    monkeypatch.setattr(windows, "_window_at", counting)
    for minute in range(0, 240, 7):  # the whole 4h occurrence
        now = opens.opens_at + timedelta(minutes=minute)
        assert window_at(window, now) == opens
        assert next_open(window, now) == real(window, opens.opens_at + timedelta(days=7))
    assert computed == []
    # the first instant after it closes is a new span: computed once, then cached again
    after = opens.closes_at + timedelta(seconds=1)
    assert window_at(window, after) is None and window_at(window, after + timedelta(hours=1)) is None
    assert computed == [after]


def test_a_copy_of_a_window_with_another_schedule_is_not_answered_from_the_cache() -> None:
    a = Window(rrule="FREQ=DAILY;BYHOUR=2", duration="1h")
    now = datetime(2026, 5, 1, 2, 30, tzinfo=UTC)
    assert window_at(a, now) is not None
    b = a.model_copy(update={"rrule": "FREQ=DAILY;BYHOUR=12"})
    assert window_at(b, now) is None
