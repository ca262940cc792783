"""The KV conformance suite on SQLite."""

from __future__ import annotations

import pytest

from tests.store.conformance import KVConformance


class TestSqliteKV(KVConformance):
    @pytest.fixture
    def kv_url(self, tmp_path):
        return f"sqlite:///{tmp_path}/store.db"
