"""Per-vendor target options of the fleet file (``targets[].cce``, ``.kafka``, ``.oceanbase``,
``.starrocks``): what a vendor's upgrade call can be told beyond the target's identity. One
module per vendor, each a strict pydantic model, so a typo in the fleet file names its field.

A block that depends on the target's other fields (ids, operating system) is checked when the
fleet loads; :func:`target_options` checks it again where a stage reads it, so a target built
another way is refused before any call, naming the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, overload

from shared.domain.options.cce import CceOptions
from shared.domain.options.kafka import KafkaOptions
from shared.domain.options.oceanbase import OceanBaseOptions
from shared.domain.options.starrocks import StarRocksOptions
from shared.errors import ConfigError

if TYPE_CHECKING:  # the fleet's Target holds these options: imported for types only
    from shared.domain.fleet import Target

__all__ = ["CceOptions", "KafkaOptions", "OceanBaseOptions", "StarRocksOptions", "target_options"]


@overload
def target_options(target: Target, block: Literal["cce"]) -> CceOptions: ...
@overload
def target_options(target: Target, block: Literal["oceanbase"]) -> OceanBaseOptions: ...
@overload
def target_options(target: Target, block: Literal["starrocks"]) -> StarRocksOptions: ...
def target_options(
    target: Target, block: Literal["cce", "oceanbase", "starrocks"]
) -> CceOptions | OceanBaseOptions | StarRocksOptions:
    """The target's ``block`` options (``targets[].oceanbase`` …), checked against the target as
    at fleet load: a target built another way is refused before any call, naming the field."""
    options: CceOptions | OceanBaseOptions | StarRocksOptions = getattr(target, block)
    try:
        options.check_target(target)
    except ValueError as exc:
        raise ConfigError(f"targets[{target.name}]", str(exc)) from None
    return options
