"""The KV conformance suite on JetStream KV (a real nats-server)."""

from __future__ import annotations

import pytest

from tests.store.conformance import KVConformance


class TestNatsKV(KVConformance):
    @pytest.fixture
    def kv_url(self, nats_server, namespace):
        return f"{nats_server.url}?namespace={namespace}"
