"""The Bus conformance suite on NATS JetStream (a real nats-server)."""

from __future__ import annotations

import pytest

from tests.bus.conformance import BusConformance


class TestNatsBus(BusConformance):
    @pytest.fixture
    def bus_url(self, nats_server, namespace):
        return lambda lease=30.0: f"{nats_server.url}?namespace={namespace}&lease={lease}"
