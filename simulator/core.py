"""Simulator core: the fleet, the sped-up clock, jobs, call counters and fault injection.

Everything is in memory and lazy: a job stores when it started and how long it lasts, and its
status is computed from the simulated clock when someone asks. No background task moves state.

Vendor modules (``simulator.huawei``, ``simulator.ocp``, ``simulator.ncloud``) each expose
``register(app, state)`` and add their routes with :func:`route`, which wraps the handler in the
fault injection of its *operation* (``op``, the endpoint name the handler counts calls under,
e.g. ``cce.upgrade``). A handler is a plain aiohttp handler ``async (request) -> Response``;
the state is available to it by closure or as ``request.app[STATE]``.

Faults (``POST /_sim/faults``) are keyed by operation (``"cce.upgrade"``), by service
(``"cce"``) or ``"*"``; a request uses the first of those three that has a spec (one spec, not a
merge: an operation's spec replaces its service's entirely, so repeat ``clock_skew_s`` in it).
Per request, one roll of the seeded RNG picks at most one exclusive action:

- ``reset_rate``: the connection is aborted before the handler runs (nothing happened).
- ``error_rates``: an injected error status with the vendor's error body, handler not run.
- ``drop_after_commit_rate``: the handler runs (applied, counted), then the connection is aborted.
- ``apply_then_slow_rate``: the handler runs, then its answer is held ``apply_then_slow_s`` real
  seconds before it is sent (a client that times out meanwhile has nevertheless started the job).
- ``apply_then_5xx_rate``: the handler runs, then a vendor error body with
  ``apply_then_5xx_status`` (default 500) is sent instead of its answer.

and, on every request the spec covers, independently of the roll:

- ``latency_ms``: real delay *before* the handler.
- ``list_lag_s`` (real seconds): eventual consistency. A job/task younger than this is left out of
  the service's list and "find" views (see :func:`lagging`); the direct GET of a job by its id still
  finds it (except TaurusDB's ``GET /jobs?id=``, which answers 404 meanwhile, as its docs warn).
  The views that lag (details in each vendor module's docstring): CCE/Autopilot upgrade task
  list and cluster phase; Autopilot workflow list, workflow ``pointStatuses`` and snapshot task
  list; OCP task list and cluster status; NAVER ``getClusterStatus``/``getClusterInfoList``;
  TaurusDB ``immediate-jobs``, the instance's status and ``actions``, and ``GET /jobs?id=``
  (404). Not lagged: GET of a task/workflow by its id (CCE, Autopilot, OCP), and every conflict
  check (a second upgrade is refused at once). Versions move when a job ends, lag or not.
- ``clock_skew_s``: the vendor's clock is off by this much: every timestamp it puts in an answer
  (see :func:`vendor_time`) and its ``Date`` header. Every response carries a ``Date`` in the
  simulator's (domain) clock, skewed for the request's spec; auth checks keep the real clock.

Job durations (a simulator knob, no vendor's): every upgrade job, CCE/Autopilot pre-check and
snapshot lasts its target's ``job_seconds`` (times the vendor module's fraction) — exactly, unless
``state.durations`` is a :class:`JobDurations` with ``sigma > 0``: then each is drawn, seeded, from
a lognormal with that median (``base * exp(N(0, sigma))``), and every drawn duration is kept in
``state.durations.drawn`` by job id, so a benchmark knows when each job really ends.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "KINDS",
    "OUTCOMES",
    "SERVICES",
    "STALL_AT",
    "STATE",
    "ErrorBody",
    "FaultDecision",
    "FaultSet",
    "FaultSpec",
    "Handler",
    "JobDurations",
    "Outcome",
    "SimClock",
    "SimCredentials",
    "SimJob",
    "SimState",
    "SimTarget",
    "Stats",
    "http_date",
    "install_date_header",
    "json_error",
    "lagging",
    "route",
    "vendor_now",
    "vendor_time",
]

KINDS = ("cce", "autopilot", "starrocks", "oceanbase", "ncloud-kafka")
#: Fault-injection scopes. "*" in a faults document applies to every service without its own entry.
SERVICES = ("iam", "taurusdb", "cce", "autopilot", "ocp", "ncloud")
#: What every job on a target does: succeed, fail (the vendor's failure shape), or stall (runs
#: forever, progress frozen at :data:`STALL_AT`).
OUTCOMES = ("succeed", "fail", "stall")
Outcome = Literal["succeed", "fail", "stall"]
STALL_AT = 0.5

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
    #: Persistent: every job started (or retried) on it succeeds, fails, or stalls forever.
    outcome: str = "succeed"

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")


@dataclass
class JobDurations:
    """Per-job durations (see the module docstring): ``base`` exactly when ``sigma`` is 0, else
    ``base * exp(N(0, sigma))`` from an RNG seeded with ``seed``, the target and which of its
    jobs this is (so repeatable per job, not per arrival order); ``drawn``: job id -> (target
    id, simulated start, seconds) of every duration handed out."""

    sigma: float = 0.0
    seed: int = 0
    drawn: dict[str, tuple[str, float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sigma < 0:
            raise ValueError("sigma must be >= 0")
        self._count: dict[str, int] = {}

    def draw(self, job_id: str, target_id: str, started: float, base: float) -> float:
        # one RNG per (target, its n-th job): the same seed gives each job the same duration
        # whatever order concurrent start requests arrive in
        n = self._count[target_id] = self._count.get(target_id, 0) + 1
        rng = random.Random(f"{self.seed}:{target_id}:{n}")
        seconds = base * math.exp(rng.gauss(0.0, self.sigma)) if self.sigma > 0 else base
        self.drawn[job_id] = (target_id, started, seconds)
        return seconds


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
        #: service -> fault kind -> n (kinds: reset, a status, drop_after_commit, apply_then_slow,
        #: apply_then_5xx)
        self.faults: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        #: the same, per operation
        self.op_faults: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.auth_failures: defaultdict[str, int] = defaultdict(int)
        self.requests = 0

    def count(self, endpoint: str, target_id: str) -> None:
        self.calls[endpoint][target_id] += 1

    def fault(self, service: str, op: str, kind: str) -> None:
        self.faults[service][kind] += 1
        self.op_faults[op][kind] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": {ep: dict(per) for ep, per in self.calls.items()},
            "faults": {svc: dict(per) for svc, per in self.faults.items()},
            "op_faults": {op: dict(per) for op, per in self.op_faults.items()},
            "auth_failures": dict(self.auth_failures),
            "requests": self.requests,
        }


class FaultSpec(BaseModel):
    """Faults for one service or operation. Rates are probabilities per request, rolled with a
    seeded RNG; the exclusive actions' rates (reset, error_rates, drop_after_commit,
    apply_then_slow, apply_then_5xx) must not add up to more than 1."""

    model_config = ConfigDict(extra="forbid")

    #: Real delay before the handler, on every request.
    latency_ms: float = Field(0.0, ge=0)
    #: HTTP status -> probability, e.g. {"500": 0.1, "503": 0.05, "429": 0.2}.
    error_rates: dict[str, float] = Field(default_factory=dict)
    #: Seconds sent in ``Retry-After`` on injected 429s (and 503s).
    retry_after: float = Field(2.0, ge=0)
    #: Drop the connection before the handler runs (nothing happened server-side).
    reset_rate: float = Field(0.0, ge=0, le=1)
    #: Run the handler (the job starts, the call is counted), then drop the connection unanswered.
    drop_after_commit_rate: float = Field(0.0, ge=0, le=1)
    #: Run the handler, then hold its answer ``apply_then_slow_s`` real seconds before sending it.
    apply_then_slow_rate: float = Field(0.0, ge=0, le=1)
    apply_then_slow_s: float = Field(5.0, ge=0)
    #: Run the handler, then answer ``apply_then_5xx_status`` with a vendor error body instead.
    apply_then_5xx_rate: float = Field(0.0, ge=0, le=1)
    apply_then_5xx_status: int = Field(500, ge=500, le=599)
    #: Real seconds a new job/task stays out of list and "find" views (eventual consistency).
    list_lag_s: float = Field(0.0, ge=0)
    #: Seconds the vendor's clock is off (answer timestamps and the ``Date`` header); may be < 0.
    clock_skew_s: float = 0.0

    @field_validator("error_rates")
    @classmethod
    def _statuses(cls, rates: dict[str, float]) -> dict[str, float]:
        for status, rate in rates.items():
            if not (status.isdigit() and 400 <= int(status) <= 599):
                raise ValueError(f"error_rates key {status!r} must be an HTTP error status (400-599)")
            if not 0 <= rate <= 1:
                raise ValueError(f"error_rates[{status!r}] must be within 0..1")
        return rates

    @field_validator("clock_skew_s")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("clock_skew_s must be a finite number of seconds")
        return value

    @model_validator(mode="after")
    def _total(self) -> FaultSpec:
        total = (
            self.reset_rate
            + sum(self.error_rates.values())
            + self.drop_after_commit_rate
            + self.apply_then_slow_rate
            + self.apply_then_5xx_rate
        )
        if total > 1.0 + 1e-9:
            raise ValueError(
                "reset_rate + error_rates + drop_after_commit_rate + apply_then_slow_rate"
                " + apply_then_5xx_rate must not exceed 1"
            )
        return self


@dataclass(frozen=True)
class FaultDecision:
    latency_s: float = 0.0
    #: None | "reset" | "error" | "drop" | "slow" (apply then answer late) | "late_error"
    #: (apply then answer ``status``)
    action: str | None = None
    status: int = 0
    retry_after: float = 0.0
    #: for "slow": real seconds the answer is held
    delay_s: float = 0.0
    #: not rolled: the spec's lag and skew, for every request it covers
    list_lag_s: float = 0.0
    clock_skew_s: float = 0.0


_NO_FAULT = FaultDecision()


class FaultSet:
    """:class:`FaultSpec` per operation, service or ``"*"``; ``roll(service, op)`` decides one
    request's fate. ``operations`` holds the operation names the routes registered (``route``
    adds them); keys naming an operation are checked against it once it is known."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.specs: dict[str, FaultSpec] = {}
        self.operations: set[str] = set()

    def check_key(self, key: str) -> None:
        """ValueError naming ``key`` unless it is ``"*"``, a service or a known operation."""
        if key == "*" or key in SERVICES:
            return
        service, dot, op = key.partition(".")
        if dot and service in SERVICES and op:
            if not self.operations or key in self.operations:
                return
            ops = sorted(o for o in self.operations if o.startswith(service + "."))
            raise ValueError(f"unknown operation {key!r}; {service} has {', '.join(ops)}")
        raise ValueError(
            f"unknown service or operation {key!r}; expected one of {', '.join(SERVICES)},"
            " '<service>.<operation>' (e.g. 'cce.upgrade') or '*'"
        )

    def update(self, doc: Mapping[str, Any]) -> None:
        """Apply ``{key: spec | null}``; null clears that key. Validates all before applying."""
        parsed: dict[str, FaultSpec | None] = {}
        for key, spec in doc.items():
            self.check_key(key)
            parsed[key] = None if spec is None else FaultSpec.model_validate(spec)
        for key, spec in parsed.items():
            if spec is None:
                self.specs.pop(key, None)
            else:
                self.specs[key] = spec

    def clear(self) -> None:
        self.specs.clear()

    def snapshot(self) -> dict[str, Any]:
        return {key: spec.model_dump() for key, spec in self.specs.items()}

    def spec_for(self, service: str, op: str | None = None) -> FaultSpec | None:
        """The operation's spec, else the service's, else ``"*"``'s (None: no faults)."""
        for key in (op, service, "*"):
            if key is not None and key in self.specs:
                return self.specs[key]
        return None

    def roll(self, service: str, op: str | None = None) -> FaultDecision:
        spec = self.spec_for(service, op)
        if spec is None:
            return _NO_FAULT
        base = {
            "latency_s": spec.latency_ms / 1000.0,
            "list_lag_s": spec.list_lag_s,
            "clock_skew_s": spec.clock_skew_s,
        }
        r = self.rng.random()
        edge = spec.reset_rate
        if r < edge:
            return FaultDecision(action="reset", **base)
        for status, rate in sorted(spec.error_rates.items()):
            edge += rate
            if r < edge:
                return FaultDecision(action="error", status=int(status), retry_after=spec.retry_after, **base)
        edge += spec.drop_after_commit_rate
        if r < edge:
            return FaultDecision(action="drop", **base)
        edge += spec.apply_then_slow_rate
        if r < edge:
            return FaultDecision(action="slow", delay_s=spec.apply_then_slow_s, **base)
        edge += spec.apply_then_5xx_rate
        if r < edge:
            status = spec.apply_then_5xx_status
            return FaultDecision(action="late_error", status=status, retry_after=spec.retry_after, **base)
        return FaultDecision(**base)


@dataclass(frozen=True)
class _RequestView:
    """What the handler of the current request sees of its spec (set by :func:`route`)."""

    list_lag_s: float = 0.0
    clock_skew_s: float = 0.0
    clock: SimClock | None = None


_NO_VIEW = _RequestView()
_VIEW: ContextVar[_RequestView] = ContextVar("upshift_sim_view", default=_NO_VIEW)


def vendor_time(epoch: float) -> float:
    """``epoch`` as the current request's vendor clock shows it (``clock_skew_s`` added).
    Every timestamp a vendor module puts in an answer goes through this."""
    return epoch + _VIEW.get().clock_skew_s


def vendor_now() -> float:
    """The current request's vendor clock: simulated now plus ``clock_skew_s`` (outside a
    request: the real clock)."""
    view = _VIEW.get()
    return (view.clock.now() if view.clock is not None else time.time()) + view.clock_skew_s


def lagging(created_real: float) -> bool:
    """True when something created at ``created_real`` (``time.monotonic()``) is still too new
    for the current request's list/find views (``list_lag_s``)."""
    lag = _VIEW.get().list_lag_s
    return lag > 0 and time.monotonic() - created_real < lag


def http_date(epoch: float) -> str:
    """RFC 1123, e.g. ``Tue, 17 Jan 2023 03:36:01 GMT``."""
    return formatdate(epoch, usegmt=True)


@dataclass
class SimJob:
    """One upgrade job on one target, progressing on the simulated clock.

    A job that is going to fail fails at ``fail_at`` of its duration; a stalled one runs forever,
    its progress frozen at ``stall_at``. ``outcome(now)`` is "running" | "succeeded" | "failed".
    Vendor modules keep their own views (subtasks, brokers, point statuses) in ``extra`` and
    derive them from :meth:`fraction`.
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
    #: Never ends; progress stops at ``stall_at``.
    stall: bool = False
    stall_at: float = STALL_AT
    #: ``time.monotonic()`` when it was created, for ``list_lag_s``.
    created_real: float = field(default_factory=time.monotonic)

    @property
    def ends(self) -> float:
        if self.stall:
            return math.inf
        return self.started + self.duration * (self.fail_at if self.fail else 1.0)

    @property
    def _cap(self) -> float:
        return self.fail_at if self.fail else self.stall_at if self.stall else 1.0

    def fraction(self, now: float) -> float:
        """Progress in 0..1 of the *whole* job (a failing job stops at ``fail_at``, a stalled one at
        ``stall_at``)."""
        if self.duration <= 0:
            return self._cap
        return max(0.0, min((now - self.started) / self.duration, self._cap))

    def progress_time(self, now: float) -> float:
        """The simulated time the job's progress has reached (``now``, unless it stopped)."""
        return self.started + self.fraction(now) * self.duration

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
    durations: JobDurations = field(default_factory=JobDurations)
    #: target id -> its SimJobs, oldest first (jobs_of must not scan every job of a 10,000-target fleet)
    _by_target: dict[str, list[SimJob]] = field(default_factory=dict, repr=False)
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

    def jobs_of(self, target_id: str, *, visible: bool = False) -> list[SimJob]:
        """Jobs on the target, oldest first; ``visible``: without those still hidden by the current
        request's ``list_lag_s`` (for list and find views)."""
        return [j for j in self._by_target.get(target_id, ()) if not (visible and lagging(j.created_real))]

    def active_job(self, target: SimTarget, *, visible: bool = False) -> SimJob | None:
        """The job still running on ``target`` (the vendors allow one upgrade at a time).
        ``visible=True`` for status views: a job still hidden by ``list_lag_s`` is not shown;
        conflict checks use the truth (the default)."""
        now = self.clock.now()
        for job in self.jobs_of(target.id, visible=visible):
            if job.outcome(now) == "running":
                return job
        return None

    def job_fate(self, target: SimTarget) -> tuple[bool, bool]:
        """(fail, stall) for a job started or retried now on ``target``; consumes ``fail_next``."""
        fail = target.fail_next or target.outcome == "fail"
        target.fail_next = False
        return fail, (not fail and target.outcome == "stall")

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
        """Start an upgrade; its fate follows ``target.outcome`` and consumes ``target.fail_next``.
        The caller checks conflicts first."""
        fail, stall = self.job_fate(target)
        now = self.clock.now()
        base = target.job_seconds if duration is None else duration
        job = SimJob(
            id=job_id,
            target_id=target.id,
            service=service,
            from_version=target.version,
            to_version=to_version,
            started=now,
            duration=self.durations.draw(job_id, target.id, now, base),
            fail=fail,
            fail_reason=(fail_reason or f"simulated failure upgrading {target.name} to {to_version}")
            if fail
            else "",
            fail_at=fail_at,
            extra=extra or {},
            stall=stall,
        )
        self.jobs[job_id] = job
        self._by_target.setdefault(target.id, []).append(job)
        return job

    def count(self, endpoint: str, target_id: str) -> None:
        self.stats.count(endpoint, str(target_id))

    def error_body(self, service: str, status: int, code: str, message: str) -> Any:
        return self.error_bodies.get(service, _default_error_body)(status, code, message)


STATE = web.AppKey("upshift_sim_state", SimState)
#: the clock skew of a request's fault spec, for its ``Date`` header (RequestKey where aiohttp has it)
_SKEW: Any = (
    web.RequestKey("upshift_sim_clock_skew_s", float)
    if hasattr(web, "RequestKey")
    else "upshift_sim_clock_skew_s"
)


def _abort(request: web.Request) -> None:
    # abort() (not close()) so the peer sees the connection die without any response bytes.
    if request.transport is not None:
        request.transport.abort()


def install_date_header(app: web.Application, state: SimState) -> None:
    """Every response gets ``Date`` from the simulator's clock (domain time) when it is sent, plus
    the clock skew of the request's fault spec (:func:`route` notes it on the request). aiohttp
    fills ``Date`` in only when it is missing (before or after this hook, by version): this
    overwrites it either way."""

    async def stamp(request: web.BaseRequest, response: web.StreamResponse) -> None:
        response.headers["Date"] = http_date(state.clock.now() + request.get(_SKEW, 0.0))

    app.on_response_prepare.append(stamp)


def route(
    app: web.Application,
    state: SimState,
    service: str,
    method: str,
    path: str,
    handler: Handler,
    *,
    op: str,
) -> None:
    """Register ``handler`` for ``method path`` as operation ``op`` of ``service``, wrapped with
    the fault injection of ``op`` (else ``service``, else ``"*"``).

    ``op`` is the endpoint name the handler counts calls under (``"<service>.<name>"``, e.g.
    ``cce.upgrade``); it becomes a valid fault key. Order per request: latency; then one roll
    decides reset (connection aborted before the handler), an injected error status (vendor
    error body; 429/503 carry ``Retry-After``), or, after the handler ran: "commit then drop"
    (connection aborted unanswered), "apply then slow" (answer held back), "apply then 5xx"
    (a vendor error instead of the answer). The handler runs with the spec's ``list_lag_s`` and
    ``clock_skew_s`` in effect (:func:`lagging`, :func:`vendor_time`).
    """
    if not op.startswith(service + ".") or op == service + ".":
        raise ValueError(f"operation {op!r} must be named '{service}.<name>'")
    state.faults.operations.add(op)

    async def wrapped(request: web.Request) -> web.StreamResponse:
        state.stats.requests += 1
        decision = state.faults.roll(service, op)
        request[_SKEW] = decision.clock_skew_s  # for the Date header (install_date_header)
        token = _VIEW.set(_RequestView(decision.list_lag_s, decision.clock_skew_s, state.clock))
        try:
            return await _faulted(request, decision)
        finally:
            _VIEW.reset(token)

    async def _faulted(request: web.Request, decision: FaultDecision) -> web.StreamResponse:
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        if decision.action == "reset":
            state.stats.fault(service, op, "reset")
            _abort(request)
            raise asyncio.CancelledError  # aiohttp treats this as a client that went away: no response
        if decision.action == "error":
            status = decision.status
            state.stats.fault(service, op, str(status))
            return _fault_response(state, service, status, "simulated fault", decision.retry_after)
        response = await handler(request)
        if decision.action == "drop":
            state.stats.fault(service, op, "drop_after_commit")
            _abort(request)
            raise asyncio.CancelledError
        if decision.action == "slow":
            state.stats.fault(service, op, "apply_then_slow")
            # aiohttp does not cancel a handler whose client went away: the job stays started.
            await asyncio.sleep(decision.delay_s)
        elif decision.action == "late_error":
            status = decision.status
            state.stats.fault(service, op, "apply_then_5xx")
            message = "simulated fault after the request was applied"
            return _fault_response(state, service, status, message, decision.retry_after)
        return response

    app.router.add_route(method, path, wrapped)


def _fault_response(
    state: SimState, service: str, status: int, message: str, retry_after: float
) -> web.Response:
    body = state.error_body(service, status, _FAULT_CODES.get(status, str(status)), message)
    return json_error(status, body, retry_after=retry_after if status in (429, 503) else None)
