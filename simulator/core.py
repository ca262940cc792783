"""Simulator core: the fleet, the sped-up clock, jobs, call counters and fault injection.

Everything is in memory and lazy: a job stores when it started and how long it lasts, and its
status is computed from the simulated clock when someone asks. No background task moves state.

Vendor modules (``simulator.huawei``, ``simulator.ocp``, ``simulator.ncloud``) each expose
``register(app, state)`` and add their routes with :func:`route`, which wraps the handler in the
service's fault injection. A handler is a plain aiohttp handler ``async (request) -> Response``;
the state is available to it by closure or as ``request.app[STATE]``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "KINDS",
    "SERVICES",
    "STATE",
    "ErrorBody",
    "FaultDecision",
    "FaultSet",
    "FaultSpec",
    "Handler",
    "SimClock",
    "SimCredentials",
    "SimJob",
    "SimState",
    "SimTarget",
    "Stats",
    "json_error",
    "route",
]

KINDS = ("cce", "autopilot", "starrocks", "oceanbase", "ncloud-kafka")
#: Fault-injection scopes. "*" in a faults document applies to every service without its own entry.
SERVICES = ("iam", "taurusdb", "cce", "autopilot", "ocp", "ncloud")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: ``error_body(status, code, message) -> JSON-able body`` in the vendor's own shape.
ErrorBody = Callable[[int, str, str], Any]


@dataclass
class SimTarget:
    """One simulated cluster/instance. ``versions`` are the versions it may be upgraded to (old->new)."""

    name: str
    kind: str
    id: str
    version: str
    versions: list[str]
    job_seconds: float = 600.0
    #: The next job started on this target ends Failed with a fail_reason (then the flag clears).
    fail_next: bool = False
    extra: dict = field(default_factory=dict)


class SimClock:
    """Simulated epoch seconds, running ``speed`` times real time from ``start`` (default: now).

    Auth checks (signature dates, timestamps) use the *real* clock, as the vendors do; only job
    progress uses this one.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._start = time.time() if start is None else start
        self._t0 = time.monotonic()
        self._offset = 0.0

    def now(self) -> float:
        return self._start + (time.monotonic() - self._t0) * self.speed + self._offset

    def advance(self, seconds: float) -> None:
        """Jump the simulated clock forward (tests, ``POST /_sim/clock``)."""
        self._offset += seconds


_CRED_FIELDS: dict[str, str] = {
    "hw_ak": "SIMHWAKEXAMPLE000001",
    "hw_sk": "sim-hw-secret-key-example-0000000000001",
    "hw_project_id": "0483b6b16e954cb88930a360d2c4e663",
    "hw_iam_user": "upshift",
    "hw_iam_password": "sim-iam-password",
    "hw_iam_domain": "upshift-domain",
    "ocp_user": "admin",
    "ocp_password": "sim-ocp-password",
    "ocp_ak": "SIMOCPAK0001",
    "ocp_sk": "sim-ocp-secret-key-0001",
    "ncp_ak": "SIMNCPAKEXAMPLE00001",
    "ncp_sk": "sim-ncp-secret-key-example-000000000001",
}
_SECRET_FIELDS = {"hw_sk", "hw_iam_password", "ocp_password", "ocp_sk", "ncp_sk"}


@dataclass
class SimCredentials:
    """The credentials the simulator accepts. Defaults are fixed test values; ``from_env`` reads
    ``UPSHIFT_SIM_<FIELD>`` (e.g. ``UPSHIFT_SIM_HW_AK``). Secrets are kept out of ``repr``."""

    hw_ak: str = _CRED_FIELDS["hw_ak"]
    hw_sk: str = field(default=_CRED_FIELDS["hw_sk"], repr=False)
    hw_project_id: str = _CRED_FIELDS["hw_project_id"]
    hw_iam_user: str = _CRED_FIELDS["hw_iam_user"]
    hw_iam_password: str = field(default=_CRED_FIELDS["hw_iam_password"], repr=False)
    hw_iam_domain: str = _CRED_FIELDS["hw_iam_domain"]
    ocp_user: str = _CRED_FIELDS["ocp_user"]
    ocp_password: str = field(default=_CRED_FIELDS["ocp_password"], repr=False)
    ocp_ak: str = _CRED_FIELDS["ocp_ak"]
    ocp_sk: str = field(default=_CRED_FIELDS["ocp_sk"], repr=False)
    ncp_ak: str = _CRED_FIELDS["ncp_ak"]
    ncp_sk: str = field(default=_CRED_FIELDS["ncp_sk"], repr=False)

    @staticmethod
    def env_name(field_name: str) -> str:
        return f"UPSHIFT_SIM_{field_name.upper()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: str | None) -> SimCredentials:
        """Defaults, then ``UPSHIFT_SIM_*`` variables, then non-None ``overrides`` (CLI flags)."""
        env = os.environ if environ is None else environ
        values = {name: env.get(cls.env_name(name), default) for name, default in _CRED_FIELDS.items()}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class Stats:
    """Call counters for ``GET /_sim/stats``.

    ``calls[endpoint][target_id]`` counts requests a vendor handler *processed* (authenticated and
    routed to a target, including ones answered with a vendor error and "commit then drop").
    Injected faults that stop a request before the handler are counted in ``faults`` instead.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.faults: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.auth_failures: defaultdict[str, int] = defaultdict(int)
        self.requests = 0

    def count(self, endpoint: str, target_id: str) -> None:
        self.calls[endpoint][target_id] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": {ep: dict(per) for ep, per in self.calls.items()},
            "faults": {svc: dict(per) for svc, per in self.faults.items()},
            "auth_failures": dict(self.auth_failures),
            "requests": self.requests,
        }


class FaultSpec(BaseModel):
    """Faults for one service. Rates are probabilities per request, rolled with a seeded RNG."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0)
    #: HTTP status -> probability, e.g. {"500": 0.1, "503": 0.05, "429": 0.2}.
    error_rates: dict[str, float] = Field(default_factory=dict)
    #: Seconds sent in ``Retry-After`` on injected 429s (and 503s).
    retry_after: float = Field(2.0, ge=0)
    #: Drop the connection before the handler runs (nothing happened server-side).
    reset_rate: float = Field(0.0, ge=0, le=1)
    #: Run the handler (the job starts, the call is counted), then drop the connection unanswered.
    drop_after_commit_rate: float = Field(0.0, ge=0, le=1)

    @field_validator("error_rates")
    @classmethod
    def _statuses(cls, rates: dict[str, float]) -> dict[str, float]:
        for status, rate in rates.items():
            if not (status.isdigit() and 400 <= int(status) <= 599):
                raise ValueError(f"error_rates key {status!r} must be an HTTP error status (400-599)")
            if not 0 <= rate <= 1:
                raise ValueError(f"error_rates[{status!r}] must be within 0..1")
        return rates

    @model_validator(mode="after")
    def _total(self) -> FaultSpec:
        if self.reset_rate + sum(self.error_rates.values()) + self.drop_after_commit_rate > 1.0 + 1e-9:
            raise ValueError("reset_rate + error_rates + drop_after_commit_rate must not exceed 1")
        return self


@dataclass(frozen=True)
class FaultDecision:
    latency_s: float = 0.0
    #: None | "reset" | "error" | "drop"
    action: str | None = None
    status: int = 0
    retry_after: float = 0.0


_NO_FAULT = FaultDecision()


class FaultSet:
    """Per-service :class:`FaultSpec`; ``roll(service)`` decides one request's fate."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.specs: dict[str, FaultSpec] = {}

    def update(self, doc: Mapping[str, Any]) -> None:
        """Apply ``{service: spec | null}``; null clears that service. Validates all before applying."""
        parsed: dict[str, FaultSpec | None] = {}
        for service, spec in doc.items():
            if service != "*" and service not in SERVICES:
                raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)} or '*'")
            parsed[service] = None if spec is None else FaultSpec.model_validate(spec)
        for service, spec in parsed.items():
            if spec is None:
                self.specs.pop(service, None)
            else:
                self.specs[service] = spec

    def clear(self) -> None:
        self.specs.clear()

    def snapshot(self) -> dict[str, Any]:
        return {svc: spec.model_dump() for svc, spec in self.specs.items()}

    def roll(self, service: str) -> FaultDecision:
        spec = self.specs.get(service) or self.specs.get("*")
        if spec is None:
            return _NO_FAULT
        latency = spec.latency_ms / 1000.0
        r = self.rng.random()
        edge = spec.reset_rate
        if r < edge:
            return FaultDecision(latency, "reset")
        for status, rate in sorted(spec.error_rates.items()):
            edge += rate
            if r < edge:
                return FaultDecision(latency, "error", int(status), spec.retry_after)
        edge += spec.drop_after_commit_rate
        if r < edge:
            return FaultDecision(latency, "drop")
        return FaultDecision(latency)


@dataclass
class SimJob:
    """One upgrade job on one target, progressing on the simulated clock.

    A job that is going to fail fails at ``fail_at`` of its duration; ``outcome(now)`` is
    "running" | "succeeded" | "failed". Vendor modules keep their own views (subtasks, brokers,
    point statuses) in ``extra`` and derive them from :meth:`fraction`.
    """

    id: str
    target_id: str
    service: str
    from_version: str
    to_version: str
    started: float
    duration: float
    fail: bool = False
    fail_reason: str = ""
    applied: bool = False
    #: Fraction of the duration at which a failing job fails (vendor modules align it to a step).
    fail_at: float = 0.6
    extra: dict = field(default_factory=dict)

    @property
    def ends(self) -> float:
        return self.started + self.duration * (self.fail_at if self.fail else 1.0)

    def fraction(self, now: float) -> float:
        """Progress in 0..1 of the *whole* job (a failing job stops at ``fail_at``)."""
        if self.duration <= 0:
            return self.fail_at if self.fail else 1.0
        return max(0.0, min((now - self.started) / self.duration, self.fail_at if self.fail else 1.0))

    def outcome(self, now: float) -> str:
        if now < self.ends:
            return "running"
        return "failed" if self.fail else "succeeded"


def json_error(status: int, body: Any, *, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return web.json_response(body, status=status, headers=headers)


def _default_error_body(status: int, code: str, message: str) -> Any:
    return {"code": code, "message": message}


_FAULT_CODES = {429: "Throttled", 500: "InternalError", 503: "ServiceUnavailable"}


@dataclass
class SimState:
    """Everything the simulator knows. ``targets`` is keyed by target id (unique across kinds)."""

    clock: SimClock
    targets: dict[str, SimTarget]
    creds: SimCredentials = field(default_factory=SimCredentials)
    stats: Stats = field(default_factory=Stats)
    faults: FaultSet = field(default_factory=FaultSet)
    #: Every job by its vendor id (SimJob for upgrades; vendor modules may add their own objects).
    jobs: dict[str, Any] = field(default_factory=dict)
    #: service -> vendor error body builder, registered by the vendor modules.
    error_bodies: dict[str, ErrorBody] = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    @classmethod
    def create(
        cls,
        targets: list[SimTarget],
        *,
        speed: float = 1.0,
        creds: SimCredentials | None = None,
        seed: int = 0,
        start: float | None = None,
    ) -> SimState:
        by_id: dict[str, SimTarget] = {}
        for t in targets:
            if t.id in by_id:
                raise ValueError(f"duplicate target id {t.id!r} ({by_id[t.id].name} and {t.name})")
            by_id[t.id] = t
        return cls(
            clock=SimClock(speed, start),
            targets=by_id,
            creds=creds or SimCredentials(),
            faults=FaultSet(seed),
        )

    # -- targets and jobs -------------------------------------------------------------------

    def by_id(self, kind: str, id: str) -> SimTarget | None:
        """The target of ``kind`` with ``id``, its version brought up to date with finished jobs."""
        target = self.targets.get(str(id))
        if target is None or target.kind != kind:
            return None
        self.refresh(target)
        return target

    def refresh(self, target: SimTarget) -> None:
        """Apply the version of every upgrade job on ``target`` that has succeeded by now."""
        now = self.clock.now()
        for job in self.jobs_of(target.id):
            if not job.applied and job.outcome(now) == "succeeded":
                job.applied = True
                target.version = job.to_version

    def jobs_of(self, target_id: str) -> list[SimJob]:
        return sorted(
            (j for j in self.jobs.values() if isinstance(j, SimJob) and j.target_id == target_id),
            key=lambda j: j.started,
        )

    def active_job(self, target: SimTarget) -> SimJob | None:
        """The job still running on ``target`` (the vendors allow one upgrade at a time)."""
        now = self.clock.now()
        for job in self.jobs_of(target.id):
            if job.outcome(now) == "running":
                return job
        return None

    def new_id(self, prefix: str = "") -> str:
        """A fresh id, unique in this simulator (deterministic sequence: reproducible runs)."""
        return f"{prefix}{next(self._seq)}"

    def start_job(
        self,
        target: SimTarget,
        to_version: str,
        *,
        service: str,
        job_id: str,
        fail_reason: str = "",
        duration: float | None = None,
        fail_at: float = 0.6,
        extra: dict | None = None,
    ) -> SimJob:
        """Start an upgrade; consumes ``target.fail_next``. The caller checks conflicts first."""
        fail = target.fail_next
        target.fail_next = False
        job = SimJob(
            id=job_id,
            target_id=target.id,
            service=service,
            from_version=target.version,
            to_version=to_version,
            started=self.clock.now(),
            duration=target.job_seconds if duration is None else duration,
            fail=fail,
            fail_reason=(fail_reason or f"simulated failure upgrading {target.name} to {to_version}")
            if fail
            else "",
            fail_at=fail_at,
            extra=extra or {},
        )
        self.jobs[job_id] = job
        return job

    def count(self, endpoint: str, target_id: str) -> None:
        self.stats.count(endpoint, str(target_id))

    def error_body(self, service: str, status: int, code: str, message: str) -> Any:
        return self.error_bodies.get(service, _default_error_body)(status, code, message)


STATE = web.AppKey("upshift_sim_state", SimState)


def _abort(request: web.Request) -> None:
    # abort() (not close()) so the peer sees the connection die without any response bytes.
    if request.transport is not None:
        request.transport.abort()


def route(
    app: web.Application, state: SimState, service: str, method: str, path: str, handler: Handler
) -> None:
    """Register ``handler`` for ``method path``, wrapped with ``service``'s fault injection.

    Order per request: latency; then one roll decides reset (connection aborted before the
    handler), an injected error status (vendor error body; 429/503 carry ``Retry-After``), or
    "commit then drop" (handler runs, then the connection is aborted unanswered).
    """

    async def wrapped(request: web.Request) -> web.StreamResponse:
        state.stats.requests += 1
        decision = state.faults.roll(service)
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        if decision.action == "reset":
            state.stats.faults[service]["reset"] += 1
            _abort(request)
            raise asyncio.CancelledError  # aiohttp treats this as a client that went away: no response
        if decision.action == "error":
            status = decision.status
            state.stats.faults[service][str(status)] += 1
            body = state.error_body(service, status, _FAULT_CODES.get(status, str(status)), "simulated fault")
            retry = decision.retry_after if status in (429, 503) else None
            return json_error(status, body, retry_after=retry)
        response = await handler(request)
        if decision.action == "drop":
            state.stats.faults[service]["drop_after_commit"] += 1
            _abort(request)
            raise asyncio.CancelledError
        return response

    app.router.add_route(method, path, wrapped)
