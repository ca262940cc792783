"""Per-vendor version ordering: numeric parts, revisions, build numbers, Kafka codes, tracks."""

from __future__ import annotations

import pytest

from shared.domain.versions import BadVersion, compare, is_newer, on_track, parse_version


@pytest.mark.parametrize(
    ("kind", "older", "newer"),
    [
        ("cce", "v1.23.8-r0", "v1.23.10-r0"),  # numeric, not string order
        ("cce", "v1.23.8-r0", "v1.23.8-r1"),
        ("cce", "v1.28", "v1.29"),
        ("autopilot", "v1.28.3-r0", "v1.29"),
        ("oceanbase", "2.2.75-20210108170300", "2.2.75-20210108170301"),
        ("oceanbase", "2.2.75-20210108170301", "2.2.76-20200101000000"),  # release before build
        ("oceanbase", "4.2.1.0-100000102023092807", "4.2.1.8-108000022024072217"),
        ("ncloud-kafka", "2823006", "3503006"),
        ("ncloud-kafka", "3.5.0", "3.5.1"),
        ("kafka", "2.8.2", "3503006"),
        ("starrocks", "3.3.2", "3.3.10"),
        ("starrocks", "3.3.0-rc1", "3.3.0"),
        ("starrocks", "3.3.0-rc9", "3.3.0-rc10"),
    ],
)
def test_ordering(kind, older, newer):
    assert compare(kind, older, newer) == -1
    assert compare(kind, newer, older) == 1
    assert is_newer(kind, newer, older) and not is_newer(kind, older, newer)


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [("cce", "v1.28", "v1.28.0-r0"), ("cce", "1.28.0", "v1.28.0"), ("starrocks", "3.3", "3.3.0")],
)
def test_equal_spellings(kind, a, b):
    assert compare(kind, a, b) == 0 and not is_newer(kind, a, b)


def test_kafka_code_parts():
    v = parse_version("ncloud-kafka", "3503006")
    assert v.release == (3, 5, 0) and v.build == 3006


@pytest.mark.parametrize(
    ("kind", "version", "track", "on"),
    [
        ("starrocks", "3.3.5", "3.3", True),
        ("starrocks", "3.4.0", "3.3", False),
        ("starrocks", "3.3.5", "3.3.x", True),
        ("cce", "v1.29.8-r0", "v1.29", True),
        ("cce", "v1.30", "v1.29", False),
        ("ncloud-kafka", "3503006", "3.5", True),
        ("ncloud-kafka", "3703006", "3.5", False),
        ("cce", "v1.30", None, True),
    ],
)
def test_tracks(kind, version, track, on):
    assert on_track(kind, version, track) is on


@pytest.mark.parametrize(
    ("kind", "text"), [("cce", "latest"), ("cce", "v1.2x"), ("oceanbase", "4.2-beta"), ("starrocks", "")]
)
def test_bad_versions_name_the_text_and_the_shape(kind, text):
    with pytest.raises(BadVersion, match="expected something like") as info:
        parse_version(kind, text)
    assert repr(text) in str(info.value)
    assert isinstance(info.value, ValueError)
