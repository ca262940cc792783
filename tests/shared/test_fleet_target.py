"""``Fleet.target``: the O(1) index gives what a scan gives, and never another fleet's answer."""

from __future__ import annotations

import pytest

from shared.domain.fleet import Fleet, parse_fleet
from shared.ops.demo import build_demo_fleet


def _fleet(n: int) -> Fleet:
    return parse_fleet(build_demo_fleet(n, "http://127.0.0.1:1", "p").fleet_yaml)


def test_every_target_is_found_by_name_and_an_unknown_one_is_a_key_error() -> None:
    fleet = _fleet(40)
    for t in fleet.targets:
        assert fleet.target(t.name) is t
    with pytest.raises(KeyError):
        fleet.target("no-such-target")


def test_the_index_is_not_part_of_equality_or_dumps() -> None:
    a, b = _fleet(10), _fleet(10)
    a.target(a.targets[3].name)
    assert a == b and a.model_dump() == b.model_dump()


def test_a_copy_with_other_targets_answers_from_its_own_targets() -> None:
    fleet = _fleet(20)
    gone = fleet.targets[10].name
    assert fleet.target(gone).name == gone  # the index is built
    fewer = fleet.model_copy(update={"targets": fleet.targets[:5]})
    with pytest.raises(KeyError):
        fewer.target(gone)
    assert fewer.target(fleet.targets[2].name) is fleet.targets[2]
    assert fleet.target(gone).name == gone
