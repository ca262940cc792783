"""Huawei Cloud clients: CCE, CCE Autopilot and TaurusDB (StarRocks), AK/SK or IAM token auth."""

from __future__ import annotations

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
    "HuaweiConfig",
    "IamClient",
    "Signer",
    "TaurusDbClient",
    "TokenAuth",
    "make_auth",
]
