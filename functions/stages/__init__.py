"""One function per vendor call, each consuming ``stage.requested`` filtered by kind and stage.

A stage function's module is ``functions.stages.<kind prefix>_<stage>`` and holds its
:class:`~shared.engine.stage.VendorCall` as ``CALL``. Nothing here imports them: a deployed
function loads its own module only, and :func:`call_for` (``track_job``'s way to the status call
of a job) imports the one module a job belongs to, on first use.
"""

from __future__ import annotations

import importlib

from shared.engine.stage import VendorCall

__all__ = ["PREFIX", "call_for"]

#: Module name prefix per kind (a kind may hold characters a module name cannot).
PREFIX = {
    "cce": "cce",
    "autopilot": "autopilot",
    "starrocks": "starrocks",
    "oceanbase": "oceanbase",
    "ncloud-kafka": "kafka",
}


def call_for(kind: str, stage: str) -> VendorCall | None:
    """The vendor call of (kind, stage); None when there is no such stage function."""
    prefix = PREFIX.get(kind)
    if prefix is None or not stage.isidentifier():
        return None
    try:
        module = importlib.import_module(f"functions.stages.{prefix}_{stage}")
    except ModuleNotFoundError as exc:
        if exc.name == f"functions.stages.{prefix}_{stage}":
            return None
        raise
    call = getattr(module, "CALL", None)
    return call if isinstance(call, VendorCall) and (call.kind, call.stage) == (kind, stage) else None
