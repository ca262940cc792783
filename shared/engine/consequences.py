"""The events a stage emits, and the run-scoped key every engine consequence is built with.

Consequence ids are scoped to the run (``runid``, type, stage, …), not to the input event: a
duplicate of an input with a *different* id still emits exactly the same events, so a pipeline
fed every event twice converges to one chain. Every event here is built by
:func:`events.envelope.consequence` with the key ``(runid, type, *parts)``; its correlation
(``target``, ``kind``, ``stage``) comes from the input's data, its subject from the input.

* :func:`stage_succeeded` / :func:`stage_failed` — the stage's outcome (key: its stage);
* :func:`stage_started` — ``stage.started`` and the first delayed ``job.poll`` (key: stage, 1);
* :func:`next_poll` — ``track_job``'s next delayed ``job.poll`` (key: stage, poll number);
* :func:`stage_waiting` — the same ``stage.requested`` again at the window's next opening;
* :func:`run_cancelled` — a run's ``upgrade.cancelled`` (key: the run).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from events.catalog import (
    JobPoll,
    StageFailed,
    StageRequested,
    StageStarted,
    StageSucceeded,
    T,
    UpgradeCancelled,
)
from events.envelope import Event, consequence
from shared.bus.base import Delayed, Emitted
from shared.clock import Clock
from shared.domain.stages import run_id
from shared.engine.polling import Expected, poll_delay
from shared.engine.vendor_clock import iso

__all__ = [
    "Cause",
    "StageData",
    "in_run",
    "next_poll",
    "run_cancelled",
    "stage_failed",
    "stage_started",
    "stage_succeeded",
    "stage_waiting",
]

N = TypeVar("N", bound=BaseModel)
#: The inputs of a stage function and of ``track_job``.
StageEvent = Event[StageRequested] | Event[JobPoll]


class StageData(Protocol):
    """The correlation of an event about one stage of a run (its data's fields)."""

    @property
    def target(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def stage(self) -> str | None: ...
    @property
    def to_version(self) -> str: ...


class Cause(Protocol):
    """What a consequence takes from the event that caused it (any ``Event``)."""

    @property
    def runid(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...


def in_run(
    event: Cause, d: StageData, type_: str, data: N, *parts: object, stage: str | None = None
) -> Event[N]:
    """An event caused by ``event`` (whose data is ``d``) in its run; its id depends on the run,
    ``type_`` and ``parts`` only. ``stage`` overrides the correlation's stage (a next stage)."""
    rid = event.runid or run_id(d.target, d.to_version)
    return consequence(
        type_,
        data,
        key=(rid, type_, *parts),
        subject=event.subject,
        runid=rid,
        target=d.target,
        kind=d.kind,
        stage=stage if stage is not None else d.stage,
    )


def stage_succeeded(event: StageEvent, job_id: str | None) -> Event[StageSucceeded]:
    d = event.data
    data = StageSucceeded(target=d.target, kind=d.kind, stage=d.stage, to_version=d.to_version, job_id=job_id)
    return in_run(event, d, T.STAGE_SUCCEEDED, data, d.stage)


def stage_failed(
    event: StageEvent, code: str, message: str, *, job_id: str | None = None, request_id: str | None = None
) -> Event[StageFailed]:
    d = event.data
    data = StageFailed(
        target=d.target,
        kind=d.kind,
        stage=d.stage,
        to_version=d.to_version,
        code=code or "unknown",
        message=message or code or "failed",
        job_id=job_id,
        request_id=request_id,
    )
    return in_run(event, d, T.STAGE_FAILED, data, d.stage)


def stage_started(
    event: Event[StageRequested], job_id: str, started_at: datetime, expected: Expected, clock: Clock
) -> list[Emitted]:
    """``stage.started`` and the job's first ``job.poll``, delayed per :func:`poll_delay`."""
    d = event.data
    started = StageStarted(
        target=d.target,
        kind=d.kind,
        stage=d.stage,
        to_version=d.to_version,
        job_id=job_id,
        started_at=started_at,
    )
    poll = JobPoll(
        target=d.target,
        kind=d.kind,
        stage=d.stage,
        to_version=d.to_version,
        job_id=job_id,
        poll=1,
        started_at=started_at,
        last_progress_at=started_at,
    )
    elapsed = (clock.now() - started_at).total_seconds()
    return [
        in_run(event, d, T.STAGE_STARTED, started, d.stage),
        Delayed(
            in_run(event, d, T.JOB_POLL, poll, d.stage, 1), clock.real_delay(poll_delay(expected, elapsed))
        ),
    ]


def next_poll(event: Event[JobPoll], nxt: JobPoll, delay_s: float, clock: Clock) -> Delayed:
    """``track_job``'s next look at a running job (``nxt``: the poll to send), ``delay_s``
    domain seconds from now."""
    again = in_run(event, event.data, T.JOB_POLL, nxt, event.data.stage, nxt.poll)
    return Delayed(again, clock.real_delay(delay_s))


def stage_waiting(event: Event[StageRequested], retry_at: datetime, now: datetime, clock: Clock) -> Delayed:
    """The same request again when the target's window can take the stage (``retry_at``; ``now``
    is when the window was looked at)."""
    req = event.data
    again = in_run(event, req, T.STAGE_REQUESTED, req, req.stage, req.attempt, "window", iso(retry_at))
    return Delayed(again, clock.real_delay((retry_at - now).total_seconds()))


def run_cancelled(rid: str, run: Mapping[str, Any], *, by: str, reason: str) -> Event[UpgradeCancelled]:
    """A run's ``upgrade.cancelled`` (key: the run alone — whether it ended before it started, by
    the cancel command, or at its next stage, by ``advance``, it is the same one event)."""
    data = UpgradeCancelled(
        run=rid,
        target=str(run.get("target", "")),
        kind=run["kind"],
        to_version=str(run.get("to_version", "")),
        window=run.get("window"),
        by=by,
        reason=reason[:2000],
    )
    return consequence(
        T.UPGRADE_CANCELLED,
        data,
        key=(rid, T.UPGRADE_CANCELLED),
        subject=data.target,
        runid=rid,
        target=data.target,
        kind=data.kind,
    )
