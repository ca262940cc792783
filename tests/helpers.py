"""Small test helpers shared by every suite."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from events import Event, T
from events.catalog import Echo, StageRequested

__all__ = ["ROOT", "echo", "eventually", "stage_requested", "start_serve", "wait_healthy"]

#: The checkout: real processes run from here, on its code.
ROOT = Path(__file__).resolve().parents[1]


async def eventually(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.02) -> None:
    """Wait until ``predicate()`` is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def echo(message: str = "hi", **attrs) -> Event:
    return Event(type=T.ECHO, data=Echo(message=message), **attrs)


def stage_requested(kind: str = "cce", stage: str = "upgrade", target: str = "t1", **attrs) -> Event:
    data = StageRequested(target=target, kind=kind, stage=stage, from_version="v1.27", to_version="v1.28")
    return Event(type=T.STAGE_REQUESTED, data=data, kind=kind, stage=stage, target=target, **attrs)


async def wait_healthy(port: int, proc=None, timeout: float = 20.0) -> None:
    """Until ``GET /healthz`` on ``port`` answers 200 (fails early if ``proc`` exited)."""
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"serve exited with {proc.returncode}")
            try:
                async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("serve did not come up")


def start_serve(
    bus: str,
    port: int,
    *args: str,
    env: dict[str, str] | None = None,
    stdout: int | IO[Any] = subprocess.DEVNULL,
    stderr: int | IO[Any] = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """The real ``upshift serve --bus BUS --port PORT ARGS…`` as a process of this checkout
    (``env`` added to this process's environment); the caller waits for it (:func:`wait_healthy`)
    and stops it."""
    cmd = [sys.executable, "-m", "shared.ops.cli", "serve", "--bus", bus, "--port", str(port), *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=stdout, stderr=stderr)
