"""What the three NAVER Kafka stage modules share: the client, the version and the config group.

* **Version.** The DSS API takes version *codes* (``3903006``). A release may be announced by
  code or by name (``3.9.0``, ``Kafka 3.9.0``, or the full ``Kafka 3.9.0, CMAK 3.0.0.6``): a name
  is looked up in ``getCDSSVersionList`` — codes are never computed from names (vendor-facts
  §1.4: the digit pattern is only an inference).
* **Config group.** Resolved per target version as ``shared.domain.options.kafka`` describes; a version
  without a usable group fails the stage before any upgrade call (``ConfigError``: the claim is
  released, so fixing the fleet and re-running works).

The lookups are reads: a transient error of one is marked "not applied" (it started nothing),
so a claimed stage releases its claim and retries instead of reconciling a call never made.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from shared.clouds.errors import TransientCloudError, ValidationFailed
from shared.clouds.ncloud.client import VENDOR, NcloudClient
from shared.clouds.ncloud.models import KafkaVersion
from shared.domain.fleet import Target
from shared.domain.options.kafka import is_version_code, version_key
from shared.engine.contract import VendorCall, required
from shared.errors import ConfigError

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["KafkaCall", "Version", "cluster_no", "config_group", "newer_or_same", "read", "resolve_version"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Version:
    """A target version: NAVER's code and, when known, its ``kafkaVersionName``."""

    code: int
    name: str | None = None

    def label(self) -> str:
        return f"{self.name} (code {self.code})" if self.name else f"code {self.code}"


def cluster_no(target: Target) -> int:
    """The target's ``serviceGroupInstanceNo`` (``targets[].cluster``)."""
    return required(target, "cluster", target.cluster)


async def read(call: Awaitable[T]) -> T:
    """Await a lookup; its transient errors never count as "maybe applied"."""
    try:
        return await call
    except TransientCloudError as exc:
        exc.maybe_applied = False
        raise


def _spelling(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip()).lower()


def _matches(entry: KafkaVersion, text: str) -> bool:
    key = version_key(text)
    if key is not None and version_key(entry.kafkaVersionName) == key:
        return True
    # the full application name, e.g. "Kafka 3.9.0, CMAK 3.0.0.6"
    return bool(entry.applicationVersionName) and _spelling(entry.applicationVersionName) == _spelling(text)


async def resolve_version(client: NcloudClient, to_version: str) -> Version:
    """``to_version`` as NAVER's code. A code is taken as is (no call: the vendor refuses codes it
    does not offer); a name is looked up, and must match exactly one listed version — else
    ValidationFailed naming ``to_version`` (nothing but the lookup was sent)."""
    if is_version_code(to_version):
        return Version(int(to_version))
    if version_key(to_version) is None and "," not in to_version:
        raise ValidationFailed(
            f"to_version {to_version!r}: not a Kafka version code (3903006) or name (3.9.0, 'Kafka 3.9.0')",
            vendor=VENDOR,
            field="to_version",
        )
    versions = await read(client.kafka_versions())
    found = [v for v in versions if _matches(v, to_version)]
    if not found:
        known = ", ".join(f"{v.kafkaVersionName or '?'} ({v.kafkaVersionCode})" for v in versions) or "none"
        raise ValidationFailed(
            f"to_version {to_version!r}: NAVER lists no such Kafka version (getCDSSVersionList: {known})",
            vendor=VENDOR,
            field="to_version",
        )
    if len({v.kafkaVersionCode for v in found}) > 1:
        codes = ", ".join(
            f"{v.kafkaVersionCode} ({v.applicationVersionName or v.kafkaVersionName})" for v in found
        )
        raise ValidationFailed(
            f"to_version {to_version!r} names several Kafka version codes: {codes}; announce the code",
            vendor=VENDOR,
            field="to_version",
        )
    return Version(found[0].kafkaVersionCode, found[0].kafkaVersionName or None)


async def _name_of(client: NcloudClient, code: int) -> str | None:
    for v in await read(client.kafka_versions()):
        if v.kafkaVersionCode == code:
            return v.kafkaVersionName or None
    return None


async def newer_or_same(client: NcloudClient, current: int, target: Version) -> bool:
    """Does a cluster at code ``current`` already run ``target`` or later? Equal codes do; else
    the two ``kafkaVersionName``s from the version list are compared (codes are not ordered by
    any document); unknown names: no."""
    if current == target.code:
        return True
    versions = {v.kafkaVersionCode: v.kafkaVersionName for v in await read(client.kafka_versions())}
    now, then = (
        version_key(versions.get(current) or ""),
        version_key(target.name or versions.get(target.code) or ""),
    )
    return now is not None and then is not None and now > then


async def config_group(
    client: NcloudClient, target: Target, version: Version, *, after_precheck: bool = False
) -> int:
    """The configGroupNo to upgrade ``target`` to ``version`` with (``shared.domain.options.kafka``).
    ``after_precheck``: the group of this client's passing precheck to the version, when it
    remembers one, is taken before any lookup (the upgrade must use that very group)."""
    opts = target.kafka
    where = f"targets[{target.name}].kafka.config_groups"
    name = version.name
    if name is None and opts.names_versions and opts.group_for(version.code) is None:
        name = await _name_of(client, version.code)
    mapped = opts.group_for(version.code, name)
    if mapped is not None:
        return int(mapped)
    if after_precheck:
        passed = client.prechecked_group(cluster_no(target), version.code)
        if passed is not None:
            return int(passed)
    label = Version(version.code, name).label()
    groups = await read(client.version_config_groups(version.code))
    numbers = {g.configGroupNo for g in groups}
    if target.config_group is not None and target.config_group in numbers:
        return int(target.config_group)
    pattern = opts.config_group_pattern
    candidates = [g for g in groups if pattern is None or re.search(pattern, g.configGroupName)]
    listed = ", ".join(f"{g.configGroupName or '?'} ({g.configGroupNo})" for g in groups)
    if len(candidates) == 1:
        return candidates[0].configGroupNo
    if not candidates:
        why = (
            f"none of its groups ({listed}) matches config_group_pattern {pattern!r}"
            if groups
            else "it has none"
        )
        raise ConfigError(
            where,
            f"no config group created for Kafka {label}: {why}; create one for this version"
            f" (configGroup/createConfigGroup) or map it here",
        )
    raise ConfigError(
        where,
        f"Kafka {label} has several config groups ({', '.join(f'{g.configGroupName} ({g.configGroupNo})' for g in candidates)}):"
        " map the one to use here, or set kafka.config_group_pattern",
    )


class KafkaCall(VendorCall[NcloudClient]):
    kind = "ncloud-kafka"

    def client(self, clouds: CloudClients) -> NcloudClient:
        return clouds.ncloud

    async def plan(
        self, client: NcloudClient, target: Target, to_version: str, *, after_precheck: bool = False
    ) -> tuple[Version, int]:
        """The target version and the config group to reach it with."""
        version = await resolve_version(client, to_version)
        return version, await config_group(client, target, version, after_precheck=after_precheck)
