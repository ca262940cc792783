"""A stage's :class:`~shared.engine.contract.VendorCall`, found from the manifest.

``track_job`` follows jobs of every stage but is a function of its own: it must not import the
stage functions (functions never import each other, and a deployed function loads its own module
only). :func:`call_for` reads ``serverless.yml`` — the function consuming ``stage.requested``
with ``where: {kind, stage}`` — and imports that one handler's module, on first use, for its
``CALL``. So the wiring track_job relies on is the manifest's own: a wrong ``where:`` is a
``ConfigError`` naming the function, not a job followed with another stage's status call.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Protocol

from events.catalog import JobPoll, T
from shared.clouds.client import ReconcilePolicy
from shared.domain.fleet import Target
from shared.engine.contract import JobStatus, VendorCall
from shared.errors import ConfigError
from shared.runtime.manifest import DEFAULT_MANIFEST, load_manifest, resolve_handler

__all__ = ["JobCall", "call_for", "stage_handlers"]

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients


class JobCall(Protocol):
    """What ``track_job`` needs of a stage's call (any :class:`VendorCall`, whatever its client)."""

    async def poll_status(self, clouds: CloudClients, target: Target, poll: JobPoll) -> JobStatus: ...
    def reconcile_policy(self, clouds: CloudClients) -> ReconcilePolicy: ...


@cache
def stage_handlers(manifest: str | None = None) -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, stage) → (function name, handler) of every stage function in the manifest
    (``manifest``: its path; default ``UPSHIFT_MANIFEST`` or the repository's ``serverless.yml``)."""
    path = manifest or os.environ.get("UPSHIFT_MANIFEST") or str(DEFAULT_MANIFEST)
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for name, fdef in load_manifest(path, resolve=False).functions.items():
        for trig in fdef.events:
            ev = trig.event
            if ev is not None and ev.type == T.STAGE_REQUESTED and {"kind", "stage"} <= set(ev.where):
                out[(ev.where["kind"], ev.where["stage"])] = (name, fdef.handler)
    return out


def call_for(kind: str, stage: str) -> JobCall | None:
    """The vendor call of (kind, stage); None when the manifest has no such stage function.
    ConfigError when its module holds no ``CALL`` for exactly that (kind, stage)."""
    found = stage_handlers().get((kind, stage))
    if found is None:
        return None
    name, handler = found
    module = handler.rpartition(".")[0]
    call = resolve_handler(f"{module}.CALL")
    if not isinstance(call, VendorCall) or (call.kind, call.stage) != (kind, stage):
        raise ConfigError(
            f"functions.{name}.events",
            f"where: {{kind: {kind}, stage: {stage}}} but {module}.CALL is {call!r}, not that stage's call",
        )
    return call
