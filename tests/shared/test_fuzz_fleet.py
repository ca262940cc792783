"""Fuzz the config-file edge: a valid fleet file with one value broken is refused as a
ConfigError naming file, line and the field — never another exception (a traceback to the
operator). The models are strict (unknown keys refused), so what loads is what the file says.

Structure-aware: the base is the demo's fleet file (every block a real fleet has); one leaf or
mapping anywhere in it is replaced by a wrong type, an oversized or odd string, a deep nest, or
removed. ``upshift fleet check`` and ``serve`` load through this same ``parse_fleet``.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.fleet import parse_fleet
from shared.errors import ConfigError
from shared.ops.demo import build_demo_fleet

BASE_TEXT = build_demo_fleet(5, "http://127.0.0.1:9", "p1").fleet_yaml
BASE = yaml.safe_load(BASE_TEXT)
SOURCE = "fleet.yaml"


def _paths(node: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every place in the document: mapping keys and list items, leaves and inner nodes."""
    out: list[tuple[object, ...]] = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


PATHS = _paths(BASE)
DELETE = object()

wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(min_size=5000, max_size=6000, alphabet="9a-:."),
    st.sampled_from(["", " ", "FREQ=SOMETIMES", "61 2 * * 6", "-1h", "P1D", "nan", "v" + "9" * 5000]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
    st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=50),
    st.just(DELETE),
)


def _set(doc: object, path: tuple[object, ...], value: object) -> None:
    node = doc
    for part in path[:-1]:
        node = node[part]  # type: ignore[index]
    if value is DELETE:
        del node[path[-1]]  # type: ignore[union-attr]
    else:
        node[path[-1]] = value  # type: ignore[index]


def test_the_base_is_valid() -> None:
    """The fuzzer breaks a file that loads: without that, every case below proves nothing."""
    assert parse_fleet(BASE_TEXT, SOURCE).targets


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=wrong_values)
def test_one_broken_value_is_a_config_error_naming_the_place(path: tuple[object, ...], value: object) -> None:
    doc = yaml.safe_load(BASE_TEXT)
    _set(doc, path, value)
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    try:
        fleet = parse_fleet(text, SOURCE)
    except ConfigError as exc:
        # where: the file, and a line in it; the message names a field or the document
        assert exc.where.startswith(SOURCE), exc.where
        assert str(exc).strip() and "Traceback" not in str(exc)
        return
    # accepted: the change was one the schema allows (an optional key removed, a value of an
    # allowed type, e.g. an int where a string id may be written as a number)
    assert fleet.targets or "targets" not in doc  # type: ignore[operator]


@pytest.mark.parametrize(
    "value", [-86_399_999_913_601, 10**30, -1, float("nan"), float("inf"), "99999999999999999d", "1h" * 3]
)
def test_a_duration_out_of_range_is_a_config_error(value: object) -> None:
    """What the fuzzer found: a huge number of seconds raised OverflowError from timedelta (a
    traceback from fleet loading); a negative or NaN duration was accepted as a window length."""
    doc = yaml.safe_load(BASE_TEXT)
    _set(doc, ("windows", "sat-night", "duration"), value)
    with pytest.raises(ConfigError) as err:
        parse_fleet(yaml.safe_dump(doc, sort_keys=False), SOURCE)
    assert "windows.sat-night.duration" in str(err.value)


@pytest.mark.parametrize("tz", ["9" * 5000, "Europe/" + "x" * 300, "../../etc/passwd", ""])
def test_a_timezone_that_is_no_iana_name_is_a_config_error(tz: str) -> None:
    """What the fuzzer found next: a timezone too long for a file name made zoneinfo raise
    OSError (File name too long), a traceback from fleet loading."""
    doc = yaml.safe_load(BASE_TEXT)
    _set(doc, ("windows", "sat-night", "timezone"), tz)
    with pytest.raises(ConfigError) as err:
        parse_fleet(yaml.safe_dump(doc, sort_keys=False), SOURCE)
    assert "windows.sat-night" in str(err.value)
