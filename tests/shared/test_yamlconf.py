"""Config files: duplicate keys, bytes that are not UTF-8 and cross-references are refused naming
the file, the line and the field — never merged silently, never a traceback, never ``(root)``."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.domain.fleet import Fleet, load_fleet, parse_fleet
from shared.errors import ConfigError
from shared.yamlconf import parse_yaml, yaml_model_errors

HEAD = """\
clouds: {huawei: {region: r, project_id: p}}
windows:
  sat: {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h}
targets:
"""


def _refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_fleet(text, "fleet.yaml")
    return caught.value


def test_a_duplicate_key_is_refused_naming_both_lines():
    err = _refused(
        HEAD
        + """\
  - name: a
    kind: cce
    cluster_id: c0
    window: sat
    cluster_id: c1
"""
    )
    assert err.where == "fleet.yaml:9"
    assert "duplicate key 'cluster_id' on lines 7 and 9" in err.message


def test_a_duplicate_top_level_key_and_one_in_a_flow_mapping_are_refused():
    err = _refused(HEAD + "  - {name: a, kind: cce, cluster_id: c0}\nwindows: {}\n")
    assert err.where == "fleet.yaml:6" and "duplicate key 'windows' on lines 2 and 6" in err.message
    err = _refused(HEAD + "  - {name: a, kind: cce, cluster_id: c0, kind: starrocks}\n")
    assert err.where == "fleet.yaml:5" and "duplicate key 'kind' on lines 5 and 5" in err.message


def test_merge_keys_may_still_be_overridden():
    doc, _ = parse_yaml("base: &b {kind: cce, wave: 1}\nt:\n  <<: *b\n  wave: 2\n", "x.yaml")
    assert doc["t"] == {"kind": "cce", "wave": 2}


def test_a_fleet_file_that_is_not_utf8_is_a_config_error_naming_the_line(tmp_path: Path):
    p = tmp_path / "fleet.yaml"
    p.write_bytes(HEAD.encode() + b"  - {name: caf\xe9, kind: cce, cluster_id: c0}\n")
    with pytest.raises(ConfigError) as caught:
        load_fleet(p)
    assert caught.value.where == f"{p}:5"
    assert "not UTF-8" in caught.value.message and "0xe9" in caught.value.message


@pytest.mark.parametrize(
    ("targets", "line", "field", "why"),
    [
        (
            "  - {name: a, kind: cce, cluster_id: c0, window: sat}\n"
            "  - {name: b, kind: cce, cluster_id: c1, window: sunday}\n",
            6,
            "targets[1].window",
            "unknown window 'sunday'",
        ),
        (
            "  - {name: a, kind: cce, cluster_id: c0}\n"
            "  - {name: b, kind: cce, cluster_id: c1}\n"
            "  - {name: a, kind: cce, cluster_id: c2}\n",
            7,
            "targets[2].name",
            "duplicate target name 'a'",
        ),
        (
            "  - {name: a, kind: cce, cluster_id: c0}\n  - {name: k, kind: ncloud-kafka, cluster: 3}\n",
            6,
            "targets[1].kind",
            "clouds.ncloud is required",
        ),
    ],
)
def test_a_cross_reference_error_points_at_the_target(targets, line, field, why):
    err = _refused(HEAD + targets)
    assert err.where == f"fleet.yaml:{line}", err
    assert err.message.startswith(f"{field}: "), err
    assert why in err.message


def test_every_error_of_a_file_is_listed_in_file_order(tmp_path: Path):
    p = tmp_path / "fleet.yaml"
    p.write_text(
        HEAD
        + "  - {name: a, kind: cce, cluster_id: c0, window: nope}\n"
        + "  - {name: b, kind: cce, wave: -1}\n"
        + "  - {name: c, kind: cce, cluster_id: c2, window: nope}\n"
    )
    fleet, errors = yaml_model_errors(p, Fleet)
    assert fleet is None
    assert [str(e).removeprefix(str(p)) for e in errors] == [
        ":6: targets[1].wave: Input should be greater than or equal to 0",
    ]  # (cross-references are checked once every target parses)
    p.write_text(
        HEAD
        + "  - {name: a, kind: cce, cluster_id: c0, window: nope}\n"
        + "  - {name: a, kind: cce, cluster_id: c1}\n"
    )
    fleet, errors = yaml_model_errors(p, Fleet)
    assert [e.where for e in errors] == [f"{p}:5", f"{p}:6"]
    assert "unknown window 'nope'" in errors[0].message
    assert "duplicate target name 'a'" in errors[1].message
