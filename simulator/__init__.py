"""High-fidelity fakes of the five vendor upgrade APIs (auth, jobs, faults) on loopback.

Start one in a test with :func:`simulator.testing.run_simulator`, or standalone with
``upshift simulate`` (:mod:`simulator.cli`).
"""

from __future__ import annotations

__all__: list[str] = []
