"""``CloudClients``: the vendor clients a function reaches through ``ctx.clouds``.

Built from the fleet's ``clouds`` section; each client is made on first use, so a process that
only ever talks to OceanBase never reads Huawei credentials (and a fleet without Huawei targets
needs none). Credentials are read from the environment variables the config *names*, at that
moment. The three Huawei clients share one auth object, so in token mode they share one IAM token.
"""

from __future__ import annotations

from typing import Protocol

from shared.clouds.huawei import AutopilotClient, CceClient, HuaweiConfig, TaurusDbClient, make_auth
from shared.clouds.huawei.auth import HuaweiAuth
from shared.clouds.ncloud.client import NcloudClient, NcloudConfig
from shared.clouds.oceanbase.client import OceanBaseClient, OceanBaseConfig
from shared.clouds.sessions import close_sessions
from shared.errors import ConfigError

__all__ = ["CloudClients", "CloudsConfig", "HasClouds"]


class CloudsConfig(Protocol):
    """What the registry reads of a fleet's ``clouds`` section (``shared.domain.fleet.Clouds``)."""

    @property
    def huawei(self) -> HuaweiConfig | None: ...
    @property
    def oceanbase(self) -> OceanBaseConfig | None: ...
    @property
    def ncloud(self) -> NcloudConfig | None: ...


class HasClouds(Protocol):
    """A fleet, as far as the registry cares (``shared.domain.fleet.Fleet``)."""

    @property
    def clouds(self) -> CloudsConfig: ...


class CloudClients:
    """Lazily built clients: ``.cce``, ``.autopilot``, ``.taurusdb``, ``.oceanbase``, ``.ncloud``.

    Accessing a client whose cloud is not configured raises ``ConfigError`` naming the missing
    ``clouds.<name>`` section; a missing credential variable raises ``ConfigError`` naming it.
    """

    def __init__(
        self,
        *,
        huawei: HuaweiConfig | None = None,
        oceanbase: OceanBaseConfig | None = None,
        ncloud: NcloudConfig | None = None,
    ) -> None:
        self.huawei_config = huawei
        self.oceanbase_config = oceanbase
        self.ncloud_config = ncloud
        self._huawei_auth: HuaweiAuth | None = None
        self._cce: CceClient | None = None
        self._autopilot: AutopilotClient | None = None
        self._taurusdb: TaurusDbClient | None = None
        self._oceanbase: OceanBaseClient | None = None
        self._ncloud: NcloudClient | None = None

    @classmethod
    def from_fleet(cls, fleet: HasClouds) -> CloudClients:
        """From ``fleet.clouds`` (a :class:`shared.domain.fleet.Fleet`); nothing is built yet."""
        clouds = fleet.clouds
        return cls(huawei=clouds.huawei, oceanbase=clouds.oceanbase, ncloud=clouds.ncloud)

    def __repr__(self) -> str:
        configured = [
            n
            for n, c in (
                ("huawei", self.huawei_config),
                ("oceanbase", self.oceanbase_config),
                ("ncloud", self.ncloud_config),
            )
            if c
        ]
        return f"CloudClients(configured={configured}, built={self._built()})"

    def _built(self) -> list[str]:
        clients = {
            "autopilot": self._autopilot,
            "cce": self._cce,
            "ncloud": self._ncloud,
            "oceanbase": self._oceanbase,
            "taurusdb": self._taurusdb,
        }
        return [name for name, client in clients.items() if client is not None]

    # -- the clients ---------------------------------------------------------------------------
    def _huawei(self) -> tuple[HuaweiConfig, HuaweiAuth]:
        if self.huawei_config is None:
            raise ConfigError(
                "clouds.huawei", "not configured (needed for cce, autopilot and starrocks targets)"
            )
        if self._huawei_auth is None:
            self._huawei_auth = make_auth(self.huawei_config)
        return self.huawei_config, self._huawei_auth

    @property
    def cce(self) -> CceClient:
        if self._cce is None:
            config, auth = self._huawei()
            self._cce = CceClient(config, auth=auth)
        return self._cce

    @property
    def autopilot(self) -> AutopilotClient:
        if self._autopilot is None:
            config, auth = self._huawei()
            self._autopilot = AutopilotClient(config, auth=auth)
        return self._autopilot

    @property
    def taurusdb(self) -> TaurusDbClient:
        if self._taurusdb is None:
            config, auth = self._huawei()
            self._taurusdb = TaurusDbClient(config, auth=auth)
        return self._taurusdb

    @property
    def oceanbase(self) -> OceanBaseClient:
        if self._oceanbase is None:
            if self.oceanbase_config is None:
                raise ConfigError("clouds.oceanbase", "not configured (needed for oceanbase targets)")
            self._oceanbase = OceanBaseClient(self.oceanbase_config)
        return self._oceanbase

    @property
    def ncloud(self) -> NcloudClient:
        if self._ncloud is None:
            if self.ncloud_config is None:
                raise ConfigError("clouds.ncloud", "not configured (needed for ncloud-kafka targets)")
            self._ncloud = NcloudClient(self.ncloud_config)
        return self._ncloud

    async def close(self) -> None:
        """Forget the clients and close the running loop's shared HTTP session."""
        self._cce = self._autopilot = self._taurusdb = None
        self._oceanbase = None
        self._ncloud = None
        self._huawei_auth = None
        await close_sessions()
