"""plan_upgrades: policies (track, soak, skip, frozen), no downgrades, vendor ordering, latest wins, replays."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events import T
from shared.domain.plan import Release, decide
from shared.domain.stages import run_id
from tests.functions._planning import Harness, bus_url, fleet_from, utc
from tests.helpers import eventually

FLEET = """
clouds:
  huawei: {region: ap-southeast-1, project_id: p1}
  ocp: {url: "http://127.0.0.1:1"}
  ncloud: {region: KR}
targets:
  - {name: cce-a, kind: cce, cluster_id: c1, version: v1.23.8-r0}
  - {name: cce-frozen, kind: cce, cluster_id: c2, version: v1.23.8-r0, labels: {tier: critical}}
  - {name: ob-a, kind: oceanbase, cluster_id: "22", operating_system: el7, version: 2.2.75-20210108170301}
  - {name: kafka-a, kind: ncloud-kafka, cluster: 3432149, config_group: 170, version: "2823006"}
  - {name: sr-a, kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: 5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17, version: 3.3.2}
policies:
  - {match: {labels: {tier: critical}}, frozen: true}
  - {match: {kind: starrocks}, track: "3.3", min_release_age: 7d, skip: ["3.3.4"]}
"""
NOW = utc("2026-06-10T12:00:00")


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    """The bus/store URL: every Harness test runs on the SQLite bus and on NATS JetStream."""
    return bus_url(request, tmp_path)


def _decide(product, version, released_at=NOW, current=None):
    fleet = fleet_from(FLEET)
    cur = current or {t.name: t.version for t in fleet.targets}
    return {
        d.target: d
        for d in decide(fleet, Release(product, version, released_at), NOW, cur)
        if d.product == product and d.code != "product"
    }


@pytest.mark.parametrize(
    ("product", "version", "target", "code"),
    [
        ("cce", "v1.23.10-r0", "cce-a", "planned"),  # 10 > 8 as numbers
        ("cce", "v1.23.10-r0", "cce-frozen", "frozen"),
        ("cce", "v1.23.8-r0", "cce-a", "not-newer"),
        ("cce", "v1.22.17-r0", "cce-a", "not-newer"),  # no downgrades
        ("cce", "latest", "cce-a", "bad-version"),
        ("oceanbase", "2.2.75-20210108170300", "ob-a", "not-newer"),
        ("oceanbase", "2.2.75-20210108170302", "ob-a", "planned"),
        ("kafka", "3503006", "kafka-a", "planned"),
        ("kafka", "2.8.2", "kafka-a", "not-newer"),  # the name of a code it already runs
        ("starrocks", "3.4.0", "sr-a", "track"),
        ("starrocks", "3.3.4", "sr-a", "skip"),
    ],
)
def test_decisions(product, version, target, code):
    d = _decide(product, version, released_at=NOW - timedelta(days=30))[target]
    assert d.code == code, d.reason
    assert d.take is (code == "planned")


def test_soak_until_the_policy_age():
    d = _decide("starrocks", "3.3.5", released_at=NOW - timedelta(days=2))["sr-a"]
    assert (d.take, d.code, d.soak_until) == (False, "soak", NOW + timedelta(days=5))
    assert _decide("starrocks", "3.3.5", released_at=NOW - timedelta(days=7))["sr-a"].take


def test_other_products_are_not_concerned():
    fleet = fleet_from(FLEET)
    ds = decide(fleet, Release("cce", "v1.30", NOW), NOW, {})
    assert {d.target: d.code for d in ds if d.code == "product"}.keys() == {"ob-a", "kafka-a", "sr-a"}


async def test_planned_once_and_latest_wins(backend):
    fleet = fleet_from(FLEET)
    async with Harness(backend, fleet, NOW, functions=("plan_upgrades",)) as h:
        await h.release("cce", "v1.23.10-r0", id="webhook-1")
        [planned] = h.events(T.UPGRADE_PLANNED)
        old = run_id("cce-a", "v1.23.10-r0")
        assert (planned.runid, planned.target, planned.kind) == (old, "cce-a", "cce")
        assert (planned.data.from_version, planned.data.to_version) == ("v1.23.8-r0", "v1.23.10-r0")
        run = await h.run(old)
        assert (run["state"], run["from_version"], run["to_version"], run["wave"]) == (
            "planned",
            "v1.23.8-r0",
            "v1.23.10-r0",
            0,
        )

        # the same release again (a replay, and the feed announcing it under another id): nothing new
        await h.release("cce", "v1.23.10-r0", id="webhook-1")
        await h.release("cce", "v1.23.10-r0", id="feed-7")
        assert len(h.events(T.UPGRADE_PLANNED)) == 1

        # a newer release supersedes the unstarted run
        await h.release("cce", "v1.23.11-r0")
        new = run_id("cce-a", "v1.23.11-r0")
        assert [e.runid for e in h.events(T.UPGRADE_PLANNED)] == [old, new]
        assert (await h.run(old))["state"] == "superseded"
        assert (await h.run(old))["superseded_by"] == new
        assert set((await h.waves("_anytime"))["runs"]) == {new}

        # an older one arriving late is refused, and the superseded one is never planned again
        await h.release("cce", "v1.23.9-r0")
        await h.release("cce", "v1.23.10-r0", id="feed-8")
        assert len(h.events(T.UPGRADE_PLANNED)) == 2
        assert await h.run(run_id("cce-a", "v1.23.9-r0")) is None


async def test_current_version_comes_from_the_ledger_first(backend):
    fleet = fleet_from(FLEET)
    async with Harness(backend, fleet, NOW, functions=("plan_upgrades",)) as h:
        await h.store.ledger.set_version("cce-a", "v1.23.12-r0")
        await h.release("cce", "v1.23.10-r0")
        assert h.events(T.UPGRADE_PLANNED) == []


async def test_a_soaking_release_is_looked_at_again_when_old_enough(backend):
    fleet = fleet_from(FLEET)
    # a day of domain time per real second: the re-check, 5 days out, is due ~5 s into the test —
    # late enough that a slow settle() on a loaded machine still sees it waiting
    async with Harness(backend, fleet, NOW, functions=("plan_upgrades",), speed=86400) as h:
        await h.release("starrocks", "3.3.5", released_at=NOW - timedelta(days=2))
        assert h.events(T.UPGRADE_PLANNED) == []
        [(again, delay)] = h.delayed(T.VERSION_RELEASED)
        assert again.data.released_at == NOW - timedelta(days=2)
        assert 0 < delay <= 5 + 0.1  # 5 days of domain time

        h.clock.set(NOW + timedelta(days=5))
        await eventually(lambda: len(h.events(T.UPGRADE_PLANNED)) == 1)
        assert h.events(T.UPGRADE_PLANNED)[0].data.to_version == "3.3.5"
