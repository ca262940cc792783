"""Per-vendor target options are checked when the fleet loads, naming the field."""

from __future__ import annotations

import pytest

from shared.domain.fleet import parse_fleet
from shared.errors import ConfigError

HEAD = """
clouds:
  huawei: {region: ap-southeast-1, project_id: p}
  ocp: {url: "https://ocp.example"}
  ncloud: {region: KR}
targets:
"""
IN07, IN17 = "1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07", "5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17"


def load(target: str):
    return parse_fleet(HEAD + f"  - {target}\n", "fleet.yaml")


@pytest.mark.parametrize(
    ("target", "field"),
    [
        # the instance query takes the TaurusDB id (in07), then the StarRocks id (in17)
        (f"{{name: sr, kind: starrocks, instance_id: {IN17}, starrocks_instance_id: {IN07}}}", "instance_id"),
        (f"{{name: sr, kind: starrocks, instance_id: {IN07}}}", "starrocks_instance_id"),
        # OCP's new upgrade body needs operatingSystem
        ('{name: ob, kind: oceanbase, cluster_id: "22"}', "operating_system"),
        ('{name: ob, kind: oceanbase, cluster_id: "22", operating_system: "el 7"}', "operating_system"),
        # what Autopilot's upgrade body does not take
        ("{name: ap, kind: autopilot, cluster_id: c, cce: {is_only_upgrade: true}}", "cce.is_only_upgrade"),
        # an options block of another vendor
        ("{name: k, kind: ncloud-kafka, cluster: 1, cce: {scope: Cluster}}", "kafka"),
    ],
)
def test_a_target_the_vendor_would_refuse_is_refused_at_load(target: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(target)
    assert field in str(err.value) and "fleet.yaml:" in str(err.value)


def test_well_formed_targets_load() -> None:
    sr = load(f"{{name: sr, kind: starrocks, instance_id: {IN07}, starrocks_instance_id: {IN17}}}").targets[0]
    assert sr.starrocks_instance_id == IN17
    ob = load(
        '{name: ob, kind: oceanbase, cluster_id: "22", oceanbase: {body: legacy, rpm_file_name: "ob-{version}.rpm"}}'
    )
    assert ob.targets[0].oceanbase.body == "legacy"
