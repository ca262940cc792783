"""``CloudClients``: the vendor clients a function reaches through ``ctx.clouds``.

Built from the fleet's ``clouds`` section; each client is made on first use, so a process that
only ever talks to OCP never reads Huawei credentials (and a fleet without Huawei targets needs
none). Credentials are read from the environment variables the config *names*, at that moment.
The three Huawei clients share one auth object, so in token mode they share one IAM token.
"""

from __future__ import annotations

from typing import Any

from shared.clouds.base import close_sessions
from shared.clouds.huawei import AutopilotClient, CceClient, HuaweiConfig, TaurusDbClient, make_auth
from shared.clouds.huawei.auth import HuaweiAuth
from shared.clouds.ncloud.client import NcloudClient, NcloudConfig
from shared.clouds.oceanbase.client import OcpClient, OcpConfig
from shared.errors import ConfigError

__all__ = ["CloudClients"]


class CloudClients:
    """Lazily built clients: ``.cce``, ``.autopilot``, ``.taurusdb``, ``.ocp``, ``.ncloud``.

    Accessing a client whose cloud is not configured raises ``ConfigError`` naming the missing
    ``clouds.<name>`` section; a missing credential variable raises ``ConfigError`` naming it.
    """

    def __init__(
        self,
        *,
        huawei: HuaweiConfig | None = None,
        ocp: OcpConfig | None = None,
        ncloud: NcloudConfig | None = None,
    ) -> None:
        self.huawei_config = huawei
        self.ocp_config = ocp
        self.ncloud_config = ncloud
        self._clients: dict[str, Any] = {}
        self._huawei_auth: HuaweiAuth | None = None

    @classmethod
    def from_fleet(cls, fleet: Any) -> CloudClients:
        """From ``fleet.clouds`` (a :class:`shared.domain.fleet.Fleet`); nothing is built yet."""
        clouds = fleet.clouds
        return cls(huawei=clouds.huawei, ocp=clouds.ocp, ncloud=clouds.ncloud)

    def __repr__(self) -> str:
        configured = [
            n
            for n, c in (
                ("huawei", self.huawei_config),
                ("ocp", self.ocp_config),
                ("ncloud", self.ncloud_config),
            )
            if c
        ]
        return f"CloudClients(configured={configured}, built={sorted(self._clients)})"

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
        if "cce" not in self._clients:
            config, auth = self._huawei()
            self._clients["cce"] = CceClient(config, auth=auth)
        return self._clients["cce"]

    @property
    def autopilot(self) -> AutopilotClient:
        if "autopilot" not in self._clients:
            config, auth = self._huawei()
            self._clients["autopilot"] = AutopilotClient(config, auth=auth)
        return self._clients["autopilot"]

    @property
    def taurusdb(self) -> TaurusDbClient:
        if "taurusdb" not in self._clients:
            config, auth = self._huawei()
            self._clients["taurusdb"] = TaurusDbClient(config, auth=auth)
        return self._clients["taurusdb"]

    @property
    def ocp(self) -> OcpClient:
        if "ocp" not in self._clients:
            if self.ocp_config is None:
                raise ConfigError("clouds.ocp", "not configured (needed for oceanbase targets)")
            self._clients["ocp"] = OcpClient(self.ocp_config)
        return self._clients["ocp"]

    @property
    def ncloud(self) -> NcloudClient:
        if "ncloud" not in self._clients:
            if self.ncloud_config is None:
                raise ConfigError("clouds.ncloud", "not configured (needed for ncloud-kafka targets)")
            self._clients["ncloud"] = NcloudClient(self.ncloud_config)
        return self._clients["ncloud"]

    async def close(self) -> None:
        """Forget the clients and close the running loop's shared HTTP session."""
        self._clients.clear()
        self._huawei_auth = None
        await close_sessions()
