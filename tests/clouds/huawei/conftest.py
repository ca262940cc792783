"""Huawei clients against the real simulator over loopback HTTP."""

from __future__ import annotations

import pytest

from shared.clouds.huawei import HuaweiConfig
from shared.clouds.limits import Limits
from shared.clouds.retry import RetryPolicy
from simulator.core import SimCredentials, SimTarget
from simulator.testing import run_simulator

CREDS = SimCredentials()
CCE_ID = "7378a198-4b2c-11ef-9a5e-0255ac100b01"
AP_ID = "9e1f0c2a-5d3b-11ef-8f1c-0255ac100c01"
SR_ID = "5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17"
TAURUS_ID = "1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07"


def targets() -> list[SimTarget]:
    return [
        SimTarget("cce-a", "cce", CCE_ID, "v1.28.5-r0", ["v1.29.3-r0", "v1.30.1-r2"], job_seconds=600),
        SimTarget("ap-a", "autopilot", AP_ID, "v1.28.5-r0", ["v1.29.3-r0"], job_seconds=600),
        SimTarget(
            "sr-a",
            "starrocks",
            SR_ID,
            "3.1.6",
            ["3.2.11", "3.3.5"],
            job_seconds=600,
            extra={"instance_id": TAURUS_ID},
        ),
    ]


@pytest.fixture
def hw_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HW_AK", CREDS.hw_ak)
    monkeypatch.setenv("HW_SK", CREDS.hw_sk)
    monkeypatch.setenv("HW_IAM_USER", CREDS.hw_iam_user)
    monkeypatch.setenv("HW_IAM_PASSWORD", CREDS.hw_iam_password)
    monkeypatch.setenv("HW_IAM_DOMAIN", CREDS.hw_iam_domain)


@pytest.fixture
async def sim():
    # speed 1: time passes only when a test advances the simulated clock.
    async with run_simulator(targets=targets(), speed=1.0) as handle:
        yield handle


def config(url: str, *, auth: str = "aksk", **kw) -> HuaweiConfig:
    return HuaweiConfig(
        region="ap-southeast-1",
        project_id=CREDS.hw_project_id,
        auth=auth,
        endpoints={s: url for s in ("cce", "autopilot", "taurusdb", "iam")},
        retry=kw.pop("retry", RetryPolicy(attempts=4, base=0.01, cap=0.05, deadline=5)),
        limits=kw.pop("limits", Limits(total_timeout=5)),
        **kw,
    )
