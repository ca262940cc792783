"""Per-vendor target options of the fleet file (``targets[].cce``, ``.kafka``, ``.oceanbase``,
``.starrocks``): what a vendor's upgrade call can be told beyond the target's identity. One
module per vendor, each a strict pydantic model, so a typo in the fleet file names its field."""

from __future__ import annotations

from shared.domain.options.cce import CceOptions
from shared.domain.options.kafka import KafkaOptions
from shared.domain.options.oceanbase import OceanBaseOptions
from shared.domain.options.starrocks import StarRocksOptions

__all__ = ["CceOptions", "KafkaOptions", "OceanBaseOptions", "StarRocksOptions"]
