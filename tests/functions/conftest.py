"""Fixtures of the function tests."""

from __future__ import annotations

import pytest

from tests.functions._stages_harness import ENV


@pytest.fixture
def stage_creds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator's credentials in the env vars the stage harness's fleet names."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
