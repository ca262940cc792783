"""Run the simulator inside a test: ``async with run_simulator() as sim: ... sim.url ...``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from simulator.app import build_app
from simulator.core import SimCredentials, SimState, SimTarget
from simulator.fleet import default_fleet

__all__ = ["SimHandle", "run_simulator", "start_simulator"]


@dataclass
class SimHandle:
    url: str
    state: SimState
    port: int
    runner: web.AppRunner | None = None

    def target(self, kind: str, name_or_id: str | None = None) -> SimTarget:
        """The first target of ``kind`` (or the one with that name/id) — a test convenience."""
        for t in self.state.targets.values():
            if t.kind == kind and name_or_id in (None, t.name, t.id):
                return t
        raise LookupError(f"no simulated {kind} target {name_or_id or ''}".strip())


async def start_simulator(
    *,
    targets: list[SimTarget] | None = None,
    speed: float = 60.0,
    faults: Mapping[str, Any] | None = None,
    seed: int = 0,
    creds: SimCredentials | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    start: float | None = None,
) -> SimHandle:
    """Start the simulator on ``host:port`` (0 = a free port). Stop with ``handle.runner.cleanup()``.

    ``start`` is the simulated epoch time the clock starts from (default: now).
    """
    state = SimState.create(
        default_fleet() if targets is None else targets, speed=speed, creds=creds, seed=seed, start=start
    )
    app = build_app(state)
    if faults:
        state.faults.update(faults)  # after build_app: operation names are known, so checked
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return SimHandle(url=f"http://{host}:{bound}", state=state, port=bound, runner=runner)


@asynccontextmanager
async def run_simulator(
    *,
    targets: list[SimTarget] | None = None,
    speed: float = 60.0,
    faults: Mapping[str, Any] | None = None,
    seed: int = 0,
    creds: SimCredentials | None = None,
    start: float | None = None,
) -> AsyncIterator[SimHandle]:
    """The simulator on 127.0.0.1 and a free port for the duration of the block."""
    handle = await start_simulator(
        targets=targets, speed=speed, faults=faults, seed=seed, creds=creds, start=start
    )
    try:
        yield handle
    finally:
        assert handle.runner is not None
        await handle.runner.cleanup()
