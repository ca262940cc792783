"""Fleet options of NAVER Cloud Kafka (DSS) targets (``targets[].kafka``).

A rolling upgrade needs a config group **created for the target Kafka version** (seed 004:
``upgradeConfigGroupNo`` is "the KafkaconfigGroup number created for kafkaVersion of higher
versions to upgrade"; vendor-facts §1.5), so one static group per target cannot serve two
upgrades. The group of an upgrade is, in this order:

1. ``config_groups[<target version>]`` — keyed by version code (``3903006``) or name
   (``3.9.0`` / ``Kafka 3.9.0``); used as given, without asking NAVER;
2. else NAVER's list of the version's groups (``getKafkaVersionConfigGroupList``):
   the target's old ``config_group`` if it is one of them (it was created for this version —
   the one case where the old single field is right); else the single group whose
   ``configGroupName`` matches ``config_group_pattern`` (or the only group of the version when
   no pattern is set). None or several: the stage fails naming the version (nothing is called).

``abnormal_looks`` is the configurable half of an inferred rule (vendor-facts §1.2: no source
documents when a rolling upgrade has failed): how many consecutive status looks may show the
brokers red or gray before the upgrade stage fails (``getClusterInfoList`` ``status == "error"``
fails it at once).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["KafkaOptions", "is_version_code", "version_key"]

_NAME = re.compile(r"^\s*(?:kafka\s*)?v?(\d+(?:\.\d+){0,3})\s*$", re.I)


def is_version_code(text: str) -> bool:
    """A NAVER version code (``3903006``): digits only. Codes are looked up, never computed."""
    return str(text).strip().isdigit()


def version_key(text: str) -> tuple[int, ...] | None:
    """``"Kafka 3.9.0"``, ``"3.9.0"``, ``"3.9"`` -> ``(3, 9, 0)``; None when ``text`` is not a
    Kafka version name (a code is not a name)."""
    if is_version_code(text):
        return None
    m = _NAME.match(str(text))
    if m is None:
        return None
    parts = tuple(int(p) for p in m.group(1).split("."))
    return parts + (0,) * max(0, 3 - len(parts))


class KafkaOptions(BaseModel):
    """Options of one NAVER Cloud Kafka (DSS) target (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    #: Kafka version (code or name) -> configGroupNo of a group created for that version.
    config_groups: dict[str, Annotated[int, Field(strict=True, gt=0)]] = {}
    #: Regex searched in ``configGroupName`` to pick among a version's groups.
    config_group_pattern: str | None = None
    #: Consecutive looks with brokers red/gray (cluster not in error) before the upgrade fails.
    abnormal_looks: int = Field(2, ge=1, le=100)

    @field_validator("config_groups", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `3903006: 190` with an int key and `3.9: 190` with a float one.
        if isinstance(value, dict):
            return {
                str(k) if isinstance(k, int | float) and not isinstance(k, bool) else k: v
                for k, v in value.items()
            }
        return value

    @field_validator("config_groups")
    @classmethod
    def _versions_and_numbers(cls, value: dict[str, int]) -> dict[str, int]:
        seen: dict[object, str] = {}
        for key in value:
            ident: object = int(key) if is_version_code(key) else version_key(key)
            if ident is None:
                raise ValueError(
                    f"key {key!r} is neither a Kafka version code (3903006) nor a name (3.9.0 or 'Kafka 3.9.0')"
                )
            if ident in seen:
                raise ValueError(f"keys {seen[ident]!r} and {key!r} name the same Kafka version")
            seen[ident] = key
        return value

    @field_validator("config_group_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    def group_for(self, code: int, name: str | None = None) -> int | None:
        """The mapped group of the version with ``code`` (and, when known, ``name``), if any."""
        wanted = version_key(name) if name else None
        for key, number in self.config_groups.items():
            if is_version_code(key) and int(key) == code:
                return number
        if wanted is not None:
            for key, number in self.config_groups.items():
                if version_key(key) == wanted:
                    return number
        return None

    @property
    def names_versions(self) -> bool:
        """True when some key is a version *name* (finding its group may need the version list)."""
        return any(not is_version_code(k) for k in self.config_groups)
