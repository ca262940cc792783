"""What a scope (``kind:cce``, ``window:sat-night``, ``wave:0``, ``all``, a target) covers.

Pure: a scope is one of :mod:`shared.domain.commands`' scope values; what it covers is decided on
a run's or a target's facts (name, kind, window, wave), so the same rule serves pauses, freezes,
cancels and the RBAC limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain.commands import AllScope, KindScope, Scope, TargetScope, WaveScope, WindowScope
from shared.domain.fleet import Fleet, Target

__all__ = ["covers", "covers_run", "targets_in"]


def covers(scope: Scope, *, target: str, kind: str, window: str | None, wave: int) -> bool:
    """True when ``scope`` takes in a run (or target) with these facts."""
    match scope:
        case AllScope():
            return True
        case TargetScope(name):
            return name == target
        case KindScope(k):
            return k == kind
        case WindowScope(name):
            return name == window
        case WaveScope(n):
            return n == wave
    raise TypeError(scope)


def covers_run(scope: Scope, run: Mapping[str, Any]) -> bool:
    """:func:`covers` on a run document (ledger run or waves entry: target, kind, window, wave)."""
    return covers(
        scope,
        target=str(run.get("target", "")),
        kind=str(run.get("kind", "")),
        window=run.get("window"),
        wave=int(run.get("wave", 0) or 0),
    )


def targets_in(scope: Scope, fleet: Fleet) -> list[Target]:
    """The fleet's targets the scope covers, in fleet order."""
    return [
        t for t in fleet.targets if covers(scope, target=t.name, kind=t.kind, window=t.window, wave=t.wave)
    ]
