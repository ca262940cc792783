"""bench._realised on plain values: the notice delay against the simulator's truth, its goal ratio."""

from __future__ import annotations

from bench._realised import notice_delays, notice_ratios, pct


def test_notice_delay_is_the_stage_end_minus_the_jobs_end_and_ratios_are_against_the_goal() -> None:
    drawn = {"j1": ("t1", 1000.0, 100.0), "j2": ("t2", 1000.0, 2000.0), "n1": ("t3", 995.0, 300.0)}
    runs = [
        {"target": "a", "stages": {"upgrade": {"job_id": "j1", "status_calls": 2, "state": "succeeded",
                                               "ended_at": "1970-01-01T00:18:30Z"}}},  # 1110 s: 10 late
        {"target": "b", "stages": {"upgrade": {"job_id": "j2", "status_calls": 5, "state": "succeeded",
                                               "ended_at": "1970-01-01T00:50:50Z"}}},  # 3050 s: 50 late
        # NAVER names no job: matched by start to its target's drawn job
        {"target": "c", "stages": {"upgrade": {"job_id": "x", "status_calls": 1, "state": "succeeded",
                                               "started_at": "1970-01-01T00:16:40Z",
                                               "ended_at": "1970-01-01T00:21:35Z"}}},  # 1295: 0 late
        {"target": "a", "stages": {"precheck": {"job_id": "j1", "state": "succeeded",
                                                "ended_at": "1970-01-01T00:18:30Z"}}},  # not followed
    ]  # fmt: skip
    notices = notice_delays(runs, drawn, target_ids={"c": "t3"})
    assert notices == [(10.0, 100.0), (50.0, 2000.0), (0.0, 300.0)]
    assert notice_ratios(notices) == [1.0, 0.25, 0.0]
    assert pct(notice_ratios(notices), 0.95) == 1.0
    assert notice_ratios([(6.0, 10.0)]) == [1.2]  # short jobs: the 5 s floor
