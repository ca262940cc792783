"""The contract between the engine and a stage's vendor-specific half (:class:`VendorCall`).

A stage module subclasses :class:`VendorCall` with its ``kind`` and ``stage`` and fills in which
client it uses, the ONE call that starts the stage (:meth:`VendorCall.start`), how to find what an
earlier attempt may have started (:meth:`VendorCall.find_existing`), and how to read a job's
status (:meth:`VendorCall.status`, for ``track_job``). Their answers are plain values:

* :class:`Job` — the vendor runs a job: follow it with ``job.poll``;
* :class:`Done` (and :data:`ALREADY_DONE`) — nothing to follow, the stage is complete;
* :class:`Refused` (raised) — a synchronous "no": the stage fails with its code;
* :class:`JobStatus` — one status reading of a job.

:func:`required` reads a target id the fleet requires for the kind (``cluster_id``, ``cluster``,
``instance_id``): typed as present, refused as ``ConfigError`` for a target built around the check.

``VendorCall`` is generic over its client's type, so a stage module's calls are checked against
the client it really gets (``CloudClients.cce``, ``.ocp`` …).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, Literal, TypeVar

from events.catalog import JobPoll, StageRequested
from shared.clouds.client import BaseClient, ReconcilePolicy
from shared.domain.fleet import Target
from shared.engine.vendor_clock import Since
from shared.errors import ConfigError

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["ALREADY_DONE", "Done", "Job", "JobStatus", "Refused", "VendorCall", "required"]

C = TypeVar("C", bound=BaseClient)
V = TypeVar("V")


def required(target: Target, field: str, value: V | None) -> V:
    """``value`` (the target's ``field``), which the fleet load requires for the target's kind.
    None means a target built around that check: refused before any call, naming the field."""
    if value is None:
        raise ConfigError(f"targets[{target.name}].{field}", f"a {target.kind} target needs {field}")
    return value


@dataclass(frozen=True, slots=True)
class Job:
    """The vendor accepted the call and runs a job: follow ``job_id`` with ``job.poll``."""

    job_id: str


@dataclass(frozen=True, slots=True)
class Done:
    """The stage is complete without a job to follow (synchronous call, or nothing left to do)."""

    job_id: str | None = None


#: ``find_existing``'s answer when the target already runs the version: nothing to call.
ALREADY_DONE = Done("already-done")


class Refused(Exception):
    """A synchronous call answered "no" (a failed check): the stage fails with this code."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One status reading. ``progress`` is any text that changes while the job moves."""

    state: Literal["running", "succeeded", "failed"]
    progress: str = ""
    reason: str = ""
    code: str = "job.failed"


class VendorCall(Generic[C]):
    """The vendor-specific half of one stage function. Subclasses set ``kind`` and ``stage``."""

    kind: ClassVar[str]
    stage: ClassVar[str]
    #: True for calls that start something at the vendor: claimed, recorded, reconciled.
    claimed: ClassVar[bool] = True
    #: True when a second call is harmless (a check that changes nothing): a lost answer is
    #: reconciled by calling again as soon as the first call cannot be in flight any more.
    safe_to_repeat: ClassVar[bool] = False

    def client(self, clouds: CloudClients) -> C:
        """This stage's client (``ConfigError`` when its cloud is not configured)."""
        raise NotImplementedError

    async def start(self, client: C, target: Target, req: StageRequested) -> Job | Done:
        """The ONE vendor call. Raise :class:`Refused` for a synchronous negative answer."""
        raise NotImplementedError

    async def find_existing(
        self, client: C, target: Target, req: StageRequested, since: Since
    ) -> Job | Done | None:
        """What an earlier attempt (claimed at ``since``) may have started: the job to adopt,
        ``Done``/``ALREADY_DONE`` when nothing is left to do, None when the vendor shows nothing.
        A vendor error raised here is the answer: transient → look again later; permanent →
        the stage fails with it."""
        return None

    async def status(self, client: C, target: Target, poll: JobPoll) -> JobStatus:
        """ONE status call for a job this call started (used by ``track_job``)."""
        raise NotImplementedError(f"{self.kind}/{self.stage} starts no job to follow")

    # -- what track_job uses, whatever the client's type (shared.engine.calls.JobCall) -----------

    async def poll_status(self, clouds: CloudClients, target: Target, poll: JobPoll) -> JobStatus:
        """:meth:`status` with this stage's client."""
        return await self.status(self.client(clouds), target, poll)

    def reconcile_policy(self, clouds: CloudClients) -> ReconcilePolicy:
        """How long this stage's vendor takes to settle (``settle_s``, ``look_gap_s``)."""
        return self.client(clouds).reconcile
