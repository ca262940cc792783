"""OceanBase, through OCP (OceanBase Cloud Platform): the client (``client``) and its wire models
(``models``)."""

from __future__ import annotations

from shared.clouds.oceanbase.client import OceanBaseClient, OceanBaseConfig, OceanBaseRefused

__all__ = ["OceanBaseClient", "OceanBaseConfig", "OceanBaseRefused"]
