"""Huawei Cloud client configuration: region, project, auth mode, credential *names*, endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.clouds.client import ReconcilePolicy
from shared.clouds.limits import Limits
from shared.clouds.retry import RetryPolicy

__all__ = ["DEFAULT_ENDPOINTS", "SERVICES", "HuaweiConfig"]

SERVICES = ("cce", "autopilot", "taurusdb", "iam")
#: Regional defaults. TaurusDB's host differs by region (``gaussdb`` vs ``gaussdbformysql``):
#: override ``endpoints.taurusdb`` where the default is wrong. Autopilot is served by the CCE host.
DEFAULT_ENDPOINTS = {
    "cce": "https://cce.{region}.myhuaweicloud.com",
    "autopilot": "https://cce.{region}.myhuaweicloud.com",
    "taurusdb": "https://gaussdb.{region}.myhuaweicloud.com",
    "iam": "https://iam.{region}.myhuaweicloud.com",
}


class HuaweiConfig(BaseModel):
    """Credentials are given as environment variable *names*, read at client construction.

    ``endpoints`` maps each of ``cce, autopilot, taurusdb, iam`` to a base URL; missing ones are
    derived from ``region`` (after validation every service has one).
    """

    model_config = ConfigDict(extra="forbid")

    region: str = Field(min_length=1)
    project_id: str = Field(min_length=1)
    auth: Literal["aksk", "token"] = "aksk"
    ak_env: str = "HW_AK"
    sk_env: str = "HW_SK"
    iam_user_env: str = "HW_IAM_USER"
    iam_password_env: str = "HW_IAM_PASSWORD"
    iam_domain_env: str = "HW_IAM_DOMAIN"
    endpoints: dict[str, str] = Field(default_factory=dict)
    language: Literal["en-us", "zh-cn"] = "en-us"
    limits: Limits = Field(default_factory=Limits)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    reconcile: ReconcilePolicy = Field(default_factory=ReconcilePolicy)

    @model_validator(mode="after")
    def _endpoints(self) -> HuaweiConfig:
        unknown = set(self.endpoints) - set(SERVICES)
        if unknown:
            raise ValueError(
                f"endpoints: unknown service(s) {sorted(unknown)}; expected {', '.join(SERVICES)}"
            )
        for service in SERVICES:
            url = self.endpoints.get(service) or DEFAULT_ENDPOINTS[service].format(region=self.region)
            self.endpoints[service] = url.rstrip("/")
        return self
