"""window_clock through the runtime's real ticks: opened/closing once per occurrence, across DST."""

from __future__ import annotations

import pytest

from events import T
from tests.functions._planning import Harness, bus_url, fleet_from, utc

FLEET = """
clouds: {huawei: {region: r, project_id: p}}
windows:
  berlin: {rrule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", duration: 1h, timezone: Europe/Berlin, cutoff: 15m}
  nyc: {cron: "30 1 * * *", duration: 2h, timezone: America/New_York, cutoff: 0s}
targets:
  - {name: a, kind: cce, cluster_id: c, window: berlin}
  - {name: b, kind: cce, cluster_id: d, window: nyc}
"""


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    """The bus/store URL: every Harness test runs on the SQLite bus and on NATS JetStream."""
    return bus_url(request, tmp_path)


def _opened(h: Harness, window: str) -> list[str]:
    return [e.data.opens_at.isoformat() for e in h.events(T.WINDOW_OPENED) if e.data.window == window]


def _closing(h: Harness, window: str) -> list[str]:
    return [e.data.cutoff_at.isoformat() for e in h.events(T.WINDOW_CLOSING) if e.data.window == window]


async def test_berlin_spring_forward_night(backend):
    async with Harness(
        backend, fleet_from(FLEET), utc("2026-03-29T00:00:00"), functions=("window_clock",)
    ) as h:
        # 02:30 does not exist on 2026-03-29 in Berlin: the window opens at 03:30 CEST = 01:30 UTC
        await h.at(utc("2026-03-29T01:29:00"))
        assert _opened(h, "berlin") == []
        await h.at(utc("2026-03-29T01:30:00"))
        await h.at(utc("2026-03-29T01:31:00"))
        await h.at(utc("2026-03-29T02:00:00"))
        assert _opened(h, "berlin") == ["2026-03-29T01:30:00+00:00"], "once per occurrence"
        [opened] = [e for e in h.events(T.WINDOW_OPENED) if e.data.window == "berlin"]
        assert opened.data.cutoff_at == utc("2026-03-29T02:15:00") and opened.data.closes_at == utc(
            "2026-03-29T02:30:00"
        )
        await h.at(utc("2026-03-29T02:15:00"))
        await h.at(utc("2026-03-29T02:20:00"))
        assert _closing(h, "berlin") == ["2026-03-29T02:15:00+00:00"]
        # the next night is back to 02:30 local, now CEST = 00:30 UTC
        await h.at(utc("2026-03-30T00:30:00"))
        assert _opened(h, "berlin")[-1] == "2026-03-30T00:30:00+00:00"


async def test_berlin_fall_back_night_opens_once(backend):
    async with Harness(
        backend, fleet_from(FLEET), utc("2026-10-25T00:00:00"), functions=("window_clock",)
    ) as h:
        # 02:30 happens twice on 2026-10-25: the window opens at the first (CEST, 00:30 UTC) only
        await h.at(utc("2026-10-25T00:30:00"))
        await h.at(utc("2026-10-25T01:30:00"))  # the second 02:30 (CET)
        await h.at(utc("2026-10-25T01:40:00"))
        assert _opened(h, "berlin") == ["2026-10-25T00:30:00+00:00"]
        assert _closing(h, "berlin") == ["2026-10-25T01:15:00+00:00"]


async def test_new_york_spring_forward_and_a_zero_cutoff_still_closes(backend):
    async with Harness(
        backend, fleet_from(FLEET), utc("2026-03-08T05:00:00"), functions=("window_clock",)
    ) as h:
        # 01:30 EST on the spring-forward day; the 2h window spans the jump and lasts 2 real hours
        await h.at(utc("2026-03-08T06:30:00"))
        [opened] = [e for e in h.events(T.WINDOW_OPENED) if e.data.window == "nyc"]
        assert opened.data.opens_at == utc("2026-03-08T06:30:00") and opened.data.closes_at == utc(
            "2026-03-08T08:30:00"
        )
        await h.at(utc("2026-03-08T08:29:00"))
        assert _closing(h, "nyc") == []
        await h.at(utc("2026-03-08T08:30:00"))
        assert _closing(h, "nyc") == ["2026-03-08T08:30:00+00:00"]
        # next day 01:30 EDT = 05:30 UTC
        await h.at(utc("2026-03-09T05:30:00"))
        assert _opened(h, "nyc")[-1] == "2026-03-09T05:30:00+00:00"


async def test_an_open_window_with_runs_is_swept_once_per_period_until_its_cutoff(backend):
    """One wave.ready per window and SWEEP period while it is open and its waves document holds
    runs (the ticks of a period share its id); none past the cutoff; none for a window whose
    document is empty or absent (an idle fleet's clock publishes only its ticks)."""
    from shared.domain.waves import SWEEP

    async with Harness(
        backend, fleet_from(FLEET), utc("2026-06-10T00:29:00"), functions=("window_clock",)
    ) as h:
        run = {"target": "a", "kind": "cce", "wave": 0, "state": "running", "to_version": "v1.29.0-r0"}
        await h.store.kv.put("waves", "berlin", {"window": "berlin", "runs": {"r1": run}})
        await h.store.kv.put("waves", "nyc", {"window": "nyc", "runs": {}})
        # berlin: 02:30 CEST = 00:30 UTC, cutoff 15m before its 01:30 close
        for minute in ("00:29", "00:30", "00:31", "00:34", "00:35", "01:14", "01:15", "01:20"):
            await h.at(utc(f"2026-06-10T{minute}:00"))
        sweeps = [e for e in h.events(T.WAVE_READY) if e.data.window == "berlin"]
        assert [e.data.not_before.isoformat()[11:16] for e in sweeps] == ["00:30", "00:35", "01:10"]
        assert len({e.id for e in sweeps}) == 3
        assert SWEEP.total_seconds() == 300
        # nyc opens at 05:30 UTC (01:30 EDT) with an empty document; no windowless targets
        await h.at(utc("2026-06-10T05:30:00"))
        await h.at(utc("2026-06-10T05:40:00"))
        assert [e.data.window for e in h.events(T.WAVE_READY)] == ["berlin"] * 3
        assert any(e.data.window == "nyc" for e in h.events(T.WINDOW_OPENED))
