"""The look schedule (``shared.engine.polling``): pure properties over any history and any job."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.engine.polling import (
    BLIND,
    FIRST_MIN,
    FLOOR,
    LOOKS_TO_STUCK,
    MIN_HISTORY,
    STEP,
    STUCK_AFTER,
    Expected,
    expected_from,
    observed_seconds,
    poll_delay,
)

seconds = st.floats(min_value=0.5, max_value=2e5, allow_nan=False)
histories = st.lists(seconds, max_size=20)
expectations = st.builds(expected_from, histories, seconds)


def looks(exp: Expected, until: float, late: list[float] | None = None) -> list[float]:
    """Elapsed times of the looks at a job, up to the first at or after ``until``; look k comes
    ``late[k]`` after it was due (the pipeline's latency)."""
    t, out = 0.0, []
    while not out or out[-1] < until:
        t += poll_delay(exp, t) + (late[len(out) % len(late)] if late else 0.0)
        out.append(t)
    return out


@given(histories, seconds)
def test_the_first_look_is_early_but_not_too_early(history: list[float], default: float) -> None:
    exp = expected_from(history, default)
    assert exp.first_s >= max(FLOOR, FIRST_MIN * exp.typical_s)
    if history:
        assert exp.first_s <= max(FLOOR, FIRST_MIN * exp.typical_s, min(history))
    if len(history) < MIN_HISTORY:
        assert exp.first_s <= max(FLOOR, FIRST_MIN * exp.typical_s, BLIND * min(exp.typical_s, default))


@given(expectations, st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_looks_are_at_least_floor_apart(exp: Expected, elapsed: float) -> None:
    assert poll_delay(exp, elapsed) >= FLOOR


@settings(max_examples=300)
@given(
    expectations,
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.lists(st.floats(min_value=0, max_value=30), max_size=5),
)
def test_a_job_of_any_length_is_noticed_within_the_bound(
    exp: Expected, length: float, late: list[float]
) -> None:
    seen = looks(exp, length, late)
    delay = seen[-1] - length
    slack = max(late, default=0.0)
    if length >= seen[0]:
        # ended between two looks: noticed less than one step (plus the pipeline's lateness) after
        assert delay <= max(FLOOR, STEP * length) + slack + 1e-6
    else:
        assert len(seen) == 1  # ended before the first look: noticed at it


@settings(max_examples=300)
@given(expectations)
def test_a_job_that_never_moves_has_a_bounded_number_of_looks_until_it_is_stuck(exp: Expected) -> None:
    assert len(looks(exp, STUCK_AFTER * exp.typical_s)) <= LOOKS_TO_STUCK


@given(expectations, st.floats(min_value=1, max_value=1e6, allow_nan=False))
def test_the_duration_remembered_lies_in_the_last_interval_between_looks(
    exp: Expected, length: float
) -> None:
    seen = looks(exp, length)
    found = observed_seconds(seen[-1], len(seen), exp)
    if len(seen) == 1:
        assert found == seen[0] * (1 - STEP)  # it ended before: counted a step earlier
    else:
        assert seen[-2] - 1e-6 <= found <= seen[-1]


@given(
    expectations,
    st.floats(min_value=1, max_value=1e6, allow_nan=False),
    st.floats(min_value=0, max_value=1e4, allow_nan=False),
)
def test_a_late_look_widens_the_interval_it_does_not_move_it(
    exp: Expected, length: float, late: float
) -> None:
    """The previous look's recorded time, not one inferred from the late look: the duration
    stays between the two looks (an inferred one would sit about ``late`` / 2 too long)."""
    seen = looks(exp, length)
    if len(seen) < 2:
        return
    found = observed_seconds(seen[-1] + late, len(seen), exp, previous_s=seen[-2])
    assert found == pytest.approx((seen[-2] + seen[-1] + late) / 2)
    assert seen[-2] - 1e-6 <= found <= seen[-1] + late


@given(expectations, st.floats(min_value=0, max_value=1e5, allow_nan=False))
def test_a_job_done_at_a_late_first_look_counts_a_step_before_the_look_as_scheduled(
    exp: Expected, lateness: float
) -> None:
    assert observed_seconds(exp.first_s + lateness, 1, exp) == exp.first_s * (1 - STEP)


def test_a_median_job_with_a_lognormal_history_takes_about_seven_looks() -> None:
    rng = random.Random(1)
    history = [1000 * math.exp(rng.gauss(0, 0.3)) for _ in range(20)]
    exp = expected_from(history, 1.0)
    assert exp.first_s == min(history)
    counts = [len(looks(exp, exp.typical_s * f)) for f in (0.8, 1.0, 1.3)]
    assert counts == sorted(counts) and 4 <= counts[1] <= 9, counts


def test_without_history_the_first_look_is_blind_times_the_default() -> None:
    assert expected_from([], 600.0) == Expected(600.0, BLIND * 600.0, 600.0)
    assert expected_from([], 2.0) == Expected(2.0, FLOOR, 2.0)
    # one long sample: the first look stays as early as the default says
    assert expected_from([900.0], 600.0) == Expected(900.0, BLIND * 600.0, 600.0)
    assert expected_from([500.0], 600.0) == Expected(500.0, BLIND * 500.0, 600.0)


def test_a_history_sunk_below_the_configured_duration_does_not_make_a_job_stuck_sooner() -> None:
    """Late first looks drag the history down (a job done at its first look counts a step
    before it): the stuck limit stays STUCK_AFTER x the configured duration."""
    sunk = expected_from([25.0] * 50, 120.0)
    assert sunk.typical_s == 25.0
    assert sunk.stuck_s == STUCK_AFTER * 120.0
    # a history longer than the configuration raises it, as before
    assert expected_from([300.0] * 50, 120.0).stuck_s == STUCK_AFTER * 300.0
