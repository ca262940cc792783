"""``targets[].cce`` options are checked when the fleet loads: a bad value is a ConfigError naming
the field (and the line), before any upgrade runs."""

from __future__ import annotations

import pytest

from shared.domain.fleet import parse_fleet
from shared.errors import ConfigError

HEAD = """
clouds:
  huawei: {region: ap-southeast-1, project_id: p1}
targets:
"""


def fleet(target: str):
    return parse_fleet(HEAD + target, "fleet.yaml")


def test_every_option_loads_for_cce_and_autopilot() -> None:
    for kind in ("cce", "autopilot"):
        f = fleet(
            f"  - name: t\n    kind: {kind}\n    cluster_id: c1\n    strategy: {{user_defined_step: 120}}\n"
            "    cce:\n      scope: NodePool\n      node_pool_order: {DefaultPool: 0}\n"
            "      node_order: {DefaultPool: [{node_selector: {key: role, operator: '!'}, priority: 1}]}\n"
            "      addons: [{addon_template_name: coredns, version: 1.30.6, values: {replicas: 2}}]\n"
        )
        options = f.targets[0].cce
        assert (
            options.scope == "NodePool" and options.node_order["DefaultPool"][0].node_selector.operator == "!"
        )
        assert options.addons[0].operation == "patch"


@pytest.mark.parametrize(
    ("cce", "field"),
    [
        ("{scope: Zone}", "cce.scope"),
        ("{is_only_upgrade: sometimes}", "cce.is_only_upgrade"),
        ("{node_pool_order: {DefaultPool: -1}}", "cce.node_pool_order"),
        ("{node_order: {p: [{node_selector: {key: k, operator: In}}]}}", "operator"),
        ("{node_order: {p: [{node_selector: {key: k, operator: in}, priority: -2}]}}", "priority"),
        ("{addons: [{addon_template_name: coredns}]}", "version"),
        (
            "{addons: [{addon_template_name: a, version: '1'}, {addon_template_name: a, version: '2'}]}",
            "more than once",
        ),
        ("{addons: [{addon_template_name: a, version: '1', operation: install}]}", "operation"),
        ("{user_defined_step: 20}", "user_defined_step"),
    ],
)
def test_a_bad_option_is_a_config_error_naming_the_field(cce: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        fleet(f"  - {{name: t, kind: cce, cluster_id: c1, cce: {cce}}}\n")
    assert field in str(info.value) and "fleet.yaml:" in str(info.value)


@pytest.mark.parametrize("step", [0, 121])
def test_the_rolling_step_is_bounded_at_load(step: int) -> None:
    with pytest.raises(ConfigError, match="user_defined_step"):
        fleet(f"  - {{name: t, kind: cce, cluster_id: c1, strategy: {{user_defined_step: {step}}}}}\n")
