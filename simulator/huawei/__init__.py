"""Simulated Huawei Cloud services: IAM, TaurusDB (StarRocks), CCE and CCE Autopilot.

``register(app, state)`` is what ``simulator.app`` calls. Huawei-only state (tokens, checks,
workflows, snapshots) lives in ``huawei_sim(state)``.
"""

from __future__ import annotations

from aiohttp import web

from simulator.core import SimState
from simulator.huawei import autopilot, cce, iam, taurusdb
from simulator.huawei._common import HuaweiSim, huawei_sim

__all__ = ["HuaweiSim", "huawei_sim", "register"]


def register(app: web.Application, state: SimState) -> None:
    iam.register(app, state)
    taurusdb.register(app, state)
    cce.register(app, state)
    autopilot.register(app, state)
