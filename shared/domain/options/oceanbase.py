"""Fleet options of OceanBase under OCP targets (``targets[].oceanbase``): which upgrade body the
target's OCP takes, and what goes into it.

``POST /api/v2/ob/clusters/{id}/upgrade`` has two documented bodies:

* **legacy** ``{rpmFileName}`` — the only field in the older API pages (seed 001;
  en.oceanbase.com/docs/common-ocp-10000000001484172, …1899976);
* **new** ``{upgradeMode, destVersion, operatingSystem, freezeServer?, zoneOrder?}`` — the current
  page (common-ocp-10000000002169663) marks ``rpmFileName`` deprecated.

Which OCP release switched is not documented (vendor-facts §5.1), so ``body`` chooses: ``new``,
``legacy``, or ``auto`` (default) — send the new body and, when OCP refuses it the way an OCP
that only knows ``rpmFileName`` would (:class:`LegacyFallback`), send the legacy one.

A target is checked when the fleet loads (:meth:`OceanBaseOptions.check_target`): the new body
needs an operating system (OCP's ``operatingSystem``), and so does the default RPM file name.
"""

from __future__ import annotations

import re
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ARCHES", "OS_PATTERN", "UPGRADE_MODES", "LegacyFallback", "OceanBaseOptions"]

#: ``operatingSystem``: a lower-case OS tag as in the OCP RPM names. The API page's only example
#: is ``el7`` (common-ocp-10000000002169663); the console pages name packages
#: ``oceanbase-x.x.x-YYYYMMDDhhmmss.el7.x86_64.rpm`` (common-ocp-10000000002169004). No list of
#: values is documented, so the form is checked, not the value: ``el7``, ``el8``, ``alios7`` pass;
#: ``CentOS 7`` or ``el7.x86_64`` are refused when the fleet loads.
OS_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
#: The CPU architectures of the OCP RPM names (common-ocp-10000000002169004).
ARCHES = ("x86_64", "aarch64")
#: ``upgradeMode`` values the API page shows (common-ocp-10000000002169663: "ROLLING"; its list of
#: valid values was not retrieved). Another value is sent as written (``upgrade_mode``).
UPGRADE_MODES = ("ROLLING",)
_PLACEHOLDERS = {"version", "os", "arch"}


def _rpm_name(value: str) -> str:
    if not value.endswith(".rpm") or "/" in value or len(value) > 255:
        raise ValueError("must be an RPM file name ending in .rpm (no directory, at most 255 characters)")
    return value


class LegacyFallback(BaseModel):
    """When ``body: auto`` sends the legacy body after the new one was refused.

    What an OCP that predates the new body answers to it is not documented. OCP is a Spring
    application: unknown JSON fields are ignored (Jackson's FAIL_ON_UNKNOWN_PROPERTIES is off in
    Spring and in oceanbase/ocp-express ``JacksonFactory``), so such an OCP sees ``rpmFileName``
    missing and answers a validation failure — HTTP 400 whose ``error`` names the field (the
    ``message`` or ``subErrors[].field``; ocp-express ``RestExceptionHandler``, the shared OCP
    server code). That is the default trigger; both halves are settings because it is inferred.
    A refused call started nothing, so the second call cannot double an upgrade.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: HTTP statuses of a refusal that may mean "this OCP wants rpmFileName".
    statuses: list[int] = Field(default_factory=lambda: [400], min_length=1)
    #: Text the refusal's ``error`` object must contain; None: any refusal with those statuses.
    mentions: str | None = Field("rpmFileName", min_length=1)

    @field_validator("statuses")
    @classmethod
    def _client_errors(cls, v: list[int]) -> list[int]:
        if not all(400 <= s <= 499 for s in v):
            raise ValueError("must be HTTP 4xx statuses (a 5xx may have started the upgrade)")
        return v

    def matches(self, status: int | None, error_text: str) -> bool:
        """Does a refusal (``status``, the ``error`` object as text) call for the legacy body?"""
        return status in self.statuses and (self.mentions is None or self.mentions in error_text)


class OceanBaseOptions(BaseModel):
    """Options of one OceanBase under OCP target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: new | legacy | auto (new, falling back to legacy on ``fallback``'s refusal).
    body: Literal["new", "legacy", "auto"] = "auto"
    #: OCP's ``operatingSystem`` (also the ``{os}`` of ``rpm_file_name``); when unset, the
    #: target's own ``operating_system`` field is used.
    operating_system: str | None = Field(None, pattern=OS_PATTERN)
    #: ``upgradeMode`` of the new body (only ROLLING is documented: see UPGRADE_MODES).
    upgrade_mode: str = Field("ROLLING", pattern=r"^[A-Z][A-Z_]{0,31}$")
    #: ``freezeServer``: minor compaction before a server stops (new body; omitted when unset).
    freeze_server: bool | None = None
    #: ``zoneOrder``: the order zones are upgraded in, primary cluster (new body; omitted when unset).
    zone_order: list[str] | None = None
    #: The legacy body's ``rpmFileName``: a template over ``{version}``, ``{os}`` and ``{arch}``. The
    #: default follows the packages' names in the docs (``oceanbase-2.2.75-20210108170301.el7.x86_64.rpm``,
    #: seed 001); ``rpm_files`` names a file per target version instead, where they differ.
    rpm_file_name: str = "oceanbase-{version}.{os}.{arch}.rpm"
    rpm_files: dict[str, str] = Field(default_factory=dict)
    arch: Literal["x86_64", "aarch64"] = "x86_64"
    fallback: LegacyFallback = Field(default_factory=LegacyFallback)

    @field_validator("zone_order")
    @classmethod
    def _zones(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or len(set(v)) != len(v) or not all(z.strip() for z in v)):
            raise ValueError("must list distinct, non-empty zone names")
        return v

    @field_validator("rpm_file_name")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(v) if name is not None}
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc}") from None
        unknown = names - _PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {', '.join(sorted(unknown))}; use {{version}}, {{os}}, {{arch}}"
            )
        return _rpm_name(v)

    @field_validator("rpm_files")
    @classmethod
    def _files(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v.values():
            _rpm_name(name)
        return v

    @model_validator(mode="after")
    def _body_fields(self) -> OceanBaseOptions:
        if self.body == "legacy" and (self.freeze_server is not None or self.zone_order is not None):
            raise ValueError("freeze_server and zone_order belong to the new body; body is legacy")
        return self

    # -- what the stage sends ----------------------------------------------------------------

    def os_of(self, target: Any) -> str | None:
        return self.operating_system or getattr(target, "operating_system", None)

    def _needs_os_for_rpm(self) -> bool:
        return "{os}" in self.rpm_file_name

    def check_target(self, target: Any) -> None:
        """ValueError naming the field when ``target`` cannot be upgraded with these options.
        Meant for fleet load (``Target`` validation); the stage calls it again before its call."""
        own = getattr(target, "operating_system", None)
        if own is not None and not re.match(OS_PATTERN, own):
            raise ValueError(
                f"operating_system: {own!r} is not an OCP operating system tag such as el7 or el8"
            )
        if self.os_of(target) is None:
            if self.body in ("new", "auto"):
                raise ValueError(
                    f"operating_system: an OceanBase target with the {self.body} upgrade body needs it "
                    "(OCP's operatingSystem, e.g. el7); set operating_system or oceanbase.operating_system"
                )
            if self._needs_os_for_rpm():
                raise ValueError(
                    "operating_system: the legacy body's rpm_file_name uses {os}; set operating_system "
                    "or give oceanbase.rpm_file_name without it"
                )

    def new_body(self, target: Any, version: str) -> dict[str, Any]:
        """``{upgradeMode, destVersion, operatingSystem, freezeServer?, zoneOrder?}``."""
        body: dict[str, Any] = {
            "upgradeMode": self.upgrade_mode,
            "destVersion": version,
            "operatingSystem": self.os_of(target) or "",
        }
        if self.freeze_server is not None:
            body["freezeServer"] = self.freeze_server
        if self.zone_order is not None:
            body["zoneOrder"] = list(self.zone_order)
        return body

    def legacy_body(self, target: Any, version: str) -> dict[str, Any]:
        """``{rpmFileName}``: ``rpm_files[version]``, else the template filled in."""
        name = self.rpm_files.get(version) or self.rpm_file_name.format(
            version=version, os=self.os_of(target) or "", arch=self.arch
        )
        return {"rpmFileName": name}
