"""``targets[].kafka`` options: checked when the fleet loads (a ConfigError naming the field)."""

from __future__ import annotations

import pytest

from shared.domain.fleet import parse_fleet
from shared.domain.options.kafka import KafkaOptions, version_key
from shared.errors import ConfigError


def fleet(options: str):
    return parse_fleet(
        "clouds: {ncloud: {region: KR}}\n"
        f"targets:\n  - {{name: k, kind: ncloud-kafka, cluster: 1, config_group: 2, kafka: {options}}}\n",
        "f.yaml",
    )


def test_version_names_and_codes() -> None:
    assert version_key("Kafka 3.9.0") == version_key("3.9.0") == version_key("kafka 3.9") == (3, 9, 0)
    assert version_key("3903006") is None and version_key("Kafka 3.9.0, CMAK 3.0.0.6") is None
    assert version_key("banana") is None


def test_a_map_by_code_or_name_and_a_pattern_load() -> None:
    opts = fleet(
        '{config_groups: {3903006: 190, "Kafka 3.5.0": 170}, config_group_pattern: "^prod-", abnormal_looks: 3}'
    )
    kafka = opts.targets[0].kafka
    assert kafka.group_for(3903006) == 190
    assert kafka.group_for(3503006) is None  # a name key needs the version's name
    assert kafka.group_for(3503006, "Kafka 3.5.0") == kafka.group_for(3503006, "3.5") == 170
    assert kafka.names_versions and not KafkaOptions(config_groups={"3903006": 1}).names_versions
    assert (kafka.config_group_pattern, kafka.abnormal_looks) == ("^prod-", 3)


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ("{config_groups: {banana: 1}}", "kafka.config_groups", "neither a Kafka version code"),
        ('{config_groups: {"3.9.0": 1, "Kafka 3.9": 2}}', "kafka.config_groups", "the same Kafka version"),
        ("{config_groups: {3903006: 0}}", "kafka.config_groups.3903006", "greater than 0"),
        ("{config_groups: {3903006: true}}", "kafka.config_groups.3903006", "valid integer"),
        ('{config_groups: {3903006: "170"}}', "kafka.config_groups.3903006", "valid integer"),
        ('{config_group_pattern: "("}', "kafka.config_group_pattern", "regular expression"),
        ("{abnormal_looks: 0}", "kafka.abnormal_looks", "greater than or equal to 1"),
        ("{config_group: 3}", "kafka.config_group", "Extra inputs"),
    ],
)
def test_bad_options_are_refused_at_load_naming_the_field(options: str, field: str, says: str) -> None:
    with pytest.raises(ConfigError) as bad:
        fleet(options)
    assert f"targets[0].{field}:" in str(bad.value) and says in str(bad.value)


def test_the_planner_orders_a_kafka_name_with_codes() -> None:
    # shared/domain/versions.py reads "Kafka 3.9.0" (getCDSSVersionList's kafkaVersionName) as 3.9.0
    from shared.domain.versions import compare, on_track

    assert compare("ncloud-kafka", "2823006", "Kafka 3.9.0") < 0
    assert compare("ncloud-kafka", "kafka 3.9.0", "3.9.0") == 0
    assert on_track("ncloud-kafka", "Kafka 3.9.0", "3.9")
