"""Fleet options of CCE and CCE Autopilot targets (``targets[].cce``): what the upgrade call
(``POST .../operation/upgrade``, ``spec.clusterUpgradeAction``) can be told beyond the target
version and the rolling step (``strategy.user_defined_step``, kept on the target as before).

Each field is the SDK model's, snake-cased; the client sends them under the SDK's JSON names.
Sources: huaweicloud-sdk-python-v3 ``huaweicloud-sdk-cce/huaweicloudsdkcce/v3/model/``
``cluster_upgrade_action.py`` (addons, nodeOrder, nodePoolOrder, isOnlyUpgrade),
``upgrade_addon_config.py``, ``node_priority.py``, ``node_selector.py``,
``in_place_rolling_update.py`` (scope); seed 003 (the CCE upgrade page) for the same fields.

```yaml
- name: cce-prod-a
  kind: cce
  cluster_id: 7378a198-...
  strategy: {user_defined_step: 20}
  cce:
    scope: NodePool
    is_only_upgrade: true          # our precheck stage already ran CCE's pre-check
    node_pool_order: {DefaultPool: 0, 1f2e3d4c-...: 10}
    node_order:
      DefaultPool:
        - {node_selector: {key: node.kubernetes.io/role, value: [edge], operator: in}, priority: 5}
    addons:
      - {addon_template_name: coredns, version: 1.30.6, values: {flavor: {replicas: 2}}}
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["NODE_SELECTOR_OPERATORS", "SCOPES", "CceAddon", "CceOptions", "NodePriority", "NodeSelector"]

#: ``NodeSelector.operator`` as the SDK enumerates it (``node_selector.py``: in, notin, exists,
#: "!" (does not exist), gt, lt). Seed 003 names the field without listing values.
NODE_SELECTOR_OPERATORS = ("in", "notin", "exists", "!", "gt", "lt")
#: ``InPlaceRollingUpdate.scope`` (``in_place_rolling_update.py``): the step applies to the whole
#: cluster (default) or restarts in every node pool.
SCOPES = ("Cluster", "NodePool")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSelector(_Options):
    """A label selector choosing a batch of nodes (``nodeSelector{key, value[], operator}``)."""

    key: str = Field(min_length=1)
    value: list[str] = []
    operator: Literal["in", "notin", "exists", "!", "gt", "lt"]


class NodePriority(_Options):
    """One batch of a node pool's nodes and its priority (larger first; SDK: non-negative)."""

    node_selector: NodeSelector
    priority: int = Field(default=0, ge=0)


class CceAddon(_Options):
    """An add-on CCE upgrades with the cluster (``UpgradeAddonConfig``): installed add-on name,
    target version (must match the target cluster version), optional parameters."""

    addon_template_name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    #: The only operation the API knows for an upgrade.
    operation: Literal["patch"] = "patch"
    values: dict[str, Any] | None = None


class CceOptions(_Options):
    """Options of one CCE or CCE Autopilot target. Empty (the default) sends none of them."""

    #: Add-ons to upgrade during the cluster upgrade (``addons[]``); one entry per add-on.
    addons: list[CceAddon] = []
    #: Node pool id (``DefaultPool`` for the default pool) -> priority, larger first (``nodePoolOrder``).
    node_pool_order: dict[str, int] = {}
    #: Node pool id -> batches of its nodes in priority order (``nodeOrder``).
    node_order: dict[str, list[NodePriority]] = {}
    #: ``isOnlyUpgrade``: true skips CCE's own pre-check inside the upgrade (our ``precheck``
    #: stage runs it just before); unset lets CCE decide (its default is false). CCE only: the
    #: Autopilot upgrade body does not document it, so the Autopilot client refuses it.
    is_only_upgrade: bool | None = None
    #: ``inPlaceRollingUpdate.scope``: ``Cluster`` (CCE's default) or ``NodePool``.
    scope: Literal["Cluster", "NodePool"] | None = None

    def check_target(self, target: Any) -> None:
        """ValueError naming the field for what the target's own API does not take (fleet load)."""
        if target.kind == "autopilot" and self.is_only_upgrade is not None:
            raise ValueError("cce.is_only_upgrade: CCE Autopilot's upgrade does not take isOnlyUpgrade")

    @field_validator("addons")
    @classmethod
    def _one_entry_per_addon(cls, addons: list[CceAddon]) -> list[CceAddon]:
        names = [a.addon_template_name for a in addons]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"add-on(s) listed more than once: {', '.join(twice)}")
        return addons

    @field_validator("node_pool_order")
    @classmethod
    def _priorities(cls, order: dict[str, int]) -> dict[str, int]:
        bad = sorted(k for k, v in order.items() if v < 0 or not k)
        if bad:
            raise ValueError(
                f"node pool priorities must be >= 0 and pool ids non-empty: {', '.join(bad) or '(empty)'}"
            )
        return order
