"""Huawei Cloud clients: CCE, CCE Autopilot and TaurusDB (StarRocks), AK/SK or IAM token auth.

One module per service client (``cce``, ``autopilot``, ``taurusdb``), each on ``HuaweiClient``
(``_client``: auth, error mapping, JSON answers); their wire models are ``models.cce`` (CCE and
Autopilot share it) and ``models.taurusdb``.
"""

from __future__ import annotations

from shared.clouds.huawei._client import HuaweiClient
from shared.clouds.huawei.auth import AkSkAuth, HuaweiAuth, IamClient, TokenAuth, make_auth
from shared.clouds.huawei.autopilot import AutopilotClient
from shared.clouds.huawei.cce import CceClient
from shared.clouds.huawei.config import HuaweiConfig
from shared.clouds.huawei.signer import Signer
from shared.clouds.huawei.taurusdb import TaurusDbClient

__all__ = [
    "AkSkAuth",
    "AutopilotClient",
    "CceClient",
    "HuaweiAuth",
    "HuaweiClient",
    "HuaweiConfig",
    "IamClient",
    "Signer",
    "TaurusDbClient",
    "TokenAuth",
    "make_auth",
]
