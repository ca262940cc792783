"""What the three NAVER Kafka stage modules share: the client and the version code."""

from __future__ import annotations

from typing import Any

from functions.stages._common import VendorCall
from shared.clouds.errors import ValidationFailed
from shared.clouds.ncloud import VENDOR

__all__ = ["KafkaCall", "version_code"]


def version_code(to_version: str) -> int:
    """The DSS API takes version *codes* (``3503006``), not names (``3.5.1``): a name has no
    code without the vendor's table, so the planner must hand the code on."""
    if not to_version.isdigit():
        raise ValidationFailed(
            f"to_version {to_version!r}: Kafka upgrades need a version code like 3503006",
            vendor=VENDOR,
            field="to_version",
        )
    return int(to_version)


class KafkaCall(VendorCall):
    kind = "ncloud-kafka"

    def client(self, clouds: Any) -> Any:
        return clouds.ncloud
