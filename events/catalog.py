"""The event catalog: one pydantic model per event type's ``data``.

Each model is an *input model* in the Temporal-samples sense: new optional fields can be added
without breaking producers or consumers. An incompatible change gets a new type with a version
suffix (``dev.upshift.stage.requested.v2``) and a new model.
"""

# No ``from __future__ import annotations`` here, unlike the rest of the tree: with it every field
# annotation is a string that pydantic compiles and evaluates when it makes the class, ~a quarter
# of the cost of making these ~25 models, which every process (a deployed function's cold start
# too) pays at import. Evaluated by the interpreter instead, they are the same objects.
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CATALOG",
    "ApprovalBinding",
    "ApprovalRequested",
    "ChatCommand",
    "ChatReply",
    "ControlChanged",
    "DeadLettered",
    "Echo",
    "EventSpec",
    "JobPoll",
    "Kind",
    "NotificationRequested",
    "Platform",
    "RunApproved",
    "RunDenied",
    "StageFailed",
    "StageRequested",
    "StageStarted",
    "StageSucceeded",
    "T",
    "Tick",
    "UpgradeCancelled",
    "UpgradeFailed",
    "UpgradeHalted",
    "UpgradePlanned",
    "UpgradeRequested",
    "UpgradeSucceeded",
    "VersionReleased",
    "WaveReady",
    "WindowClosing",
    "WindowOpened",
    "model_for",
]

Kind = Literal["cce", "autopilot", "starrocks", "oceanbase", "ncloud-kafka"]


class _Data(BaseModel):
    # A tolerant reader: a field added by a newer producer (functions deploy one at a time) is
    # ignored, not a failure. The external edge refuses unknown fields (events.codec, strict=True).
    # defer_build: a model's validator is built on its first use, not at import — a deployed
    # function validates one or two of these types, and building all of them was ~100 ms of its
    # cold start (tests/events/test_catalog.py builds every one, so a broken model still fails).
    model_config = ConfigDict(extra="ignore", defer_build=True)


class VersionReleased(_Data):
    """A vendor published a new version of a product."""

    product: str = Field(
        min_length=1, max_length=64, description="Product key, e.g. 'cce', 'kafka', 'starrocks'."
    )
    version: str = Field(min_length=1, max_length=64)
    released_at: datetime | None = None
    url: str | None = Field(default=None, max_length=2048)
    origin: str = Field(default="webhook", description="webhook | feed | chat | cli")


class WindowOpened(_Data):
    """A maintenance window opened (emitted by the window clock)."""

    window: str = Field(min_length=1)
    opens_at: datetime
    closes_at: datetime
    cutoff_at: datetime = Field(description="No stage may start after this instant.")


class WindowClosing(_Data):
    """A maintenance window reached its cutoff: no new stage may start in it."""

    window: str = Field(min_length=1)
    cutoff_at: datetime
    closes_at: datetime


class UpgradePlanned(_Data):
    """A target should move to a version, in its next window."""

    target: str = Field(min_length=1)
    kind: Kind
    from_version: str
    to_version: str
    window: str | None = None
    wave: int = Field(default=0, ge=0)
    product: str | None = None


class UpgradeRequested(_Data):
    """Someone (chat, CLI) asked for an upgrade outside the release flow."""

    target: str = Field(min_length=1)
    to_version: str = Field(min_length=1)
    requested_by: str = "cli"


class StageRequested(_Data):
    """Run one stage of a target's upgrade: exactly one vendor call."""

    target: str = Field(min_length=1)
    kind: Kind
    stage: str = Field(
        min_length=1, description="precheck | snapshot | workflow | upgrade | postcheck | verify"
    )
    from_version: str
    to_version: str
    attempt: int = Field(default=1, ge=1)


class StageStarted(_Data):
    """A vendor accepted a stage's call; ``job_id`` is what to follow."""

    target: str
    kind: Kind
    stage: str
    to_version: str
    job_id: str
    started_at: datetime | None = None


class JobPoll(_Data):
    """Look at a vendor job once (delivered with a delay)."""

    target: str
    kind: Kind
    stage: str
    to_version: str
    job_id: str
    poll: int = Field(
        default=1, ge=1, description="How many status calls this job has had, this one included."
    )
    started_at: datetime | None = None
    last_progress: str | None = None
    last_progress_at: datetime | None = None
    looked_at: datetime | None = Field(
        default=None, description="When the previous status call asked (none before the second look)."
    )


class StageSucceeded(_Data):
    """A stage's vendor job finished successfully."""

    target: str
    kind: Kind
    stage: str
    to_version: str
    job_id: str | None = None


class StageFailed(_Data):
    """A stage failed for good; carries the vendor's code and message."""

    target: str
    kind: Kind
    stage: str
    to_version: str
    code: str
    message: str
    job_id: str | None = None
    request_id: str | None = None


class UpgradeSucceeded(_Data):
    """A target reached its new version (every stage succeeded)."""

    target: str
    kind: Kind
    from_version: str
    to_version: str


class UpgradeFailed(_Data):
    """A target's upgrade stopped at a failed stage."""

    target: str
    kind: Kind
    from_version: str
    to_version: str
    stage: str
    code: str
    message: str


class DeadLettered(_Data):
    """An event exhausted its delivery attempts at one consumer: its run, if still open, fails."""

    consumer: str = Field(min_length=1, max_length=200)
    event_type: str = Field(min_length=1, max_length=200)
    event_id: str = Field(min_length=1, max_length=200)
    attempts: int = Field(ge=0)
    error: str = Field(max_length=2000)
    target: str | None = None
    kind: Kind | None = None
    stage: str | None = None
    to_version: str | None = None


class UpgradeHalted(_Data):
    """Waves after a failed canary are stopped until someone resumes or cancels."""

    window: str | None = None
    wave: int
    reason: str
    failed_target: str | None = None


class WaveReady(_Data):
    """A window's wave may be due: its bake time has passed (start_upgrades looks again)."""

    window: str = Field(min_length=1)
    wave: int = Field(ge=0)
    not_before: datetime = Field(
        description="The instant (domain time) the bake of the waves before it ends."
    )


#: Where a command came from: the chat edges, an authenticated ``POST /events`` (bot), the HTTP
#: API, the CLI on the bus host.
Platform = Literal["slack", "mattermost", "bot", "api", "cli", "test"]


class ApprovalBinding(_Data):
    """What an Approve/Deny button's value binds: the run, its target version, the window occurrence."""

    run: str = Field(min_length=1, max_length=64)
    to_version: str = Field(min_length=1, max_length=64)
    occurrence: str | None = Field(default=None, max_length=64, description="opens_at, ISO 8601")


class ChatCommand(_Data):
    """A command (the text after ``/upshift``) from chat, a bot, the API or the CLI, with who sent it.

    The identity fields are the platform's immutable ids (Slack team ``T…`` and user ``U…``,
    Mattermost user id), never display names alone. A Slack/Mattermost identity is trusted only
    when the event's ``via`` extension names that edge (the edges set it; ``POST /events`` sets
    ``via=token:<name>`` from the bearer token, whatever the sender put there).
    """

    platform: Platform = "slack"
    channel: str = Field(default="", max_length=200)
    user: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=2000)
    response_url: str | None = Field(default=None, max_length=2048)
    team: str | None = Field(default=None, max_length=200)
    user_name: str | None = Field(default=None, max_length=200)
    trigger_id: str | None = Field(default=None, max_length=200)
    action_id: str | None = Field(default=None, max_length=255)
    #: An approval button's binding (run, target version, window occurrence) — an approval from a
    #: button counts only for the request it was posted for (``ApprovalBinding``).
    binding: ApprovalBinding | None = None


class ChatReply(_Data):
    """The result of a command, to post to the ``response_url`` its chat platform gave."""

    platform: Platform = "slack"
    response_url: str = Field(min_length=1, max_length=2048)
    text: str = Field(min_length=1, max_length=4000)
    ephemeral: bool = True
    #: Replace the message whose button was clicked (an approval request) instead of adding one.
    replace_original: bool = False


class ApprovalRequested(_Data):
    """A planned run waits for approval before it may start, for one window occurrence."""

    run: str = Field(min_length=1)
    target: str
    kind: Kind
    from_version: str
    to_version: str
    window: str | None = None
    wave: int = 0
    occurrence: str | None = Field(default=None, description="The occurrence's opens_at (ISO 8601).")
    expires_at: datetime
    min_approvals: int = Field(default=1, ge=1)
    approvers: list[str] = []


class RunApproved(_Data):
    """A run has the approvals it needs (``approved_by``: who, in order)."""

    run: str = Field(min_length=1)
    target: str
    to_version: str
    window: str | None = None
    approved_by: list[str] = []


class RunDenied(_Data):
    """Someone denied a run's approval: the run ends ``denied``."""

    run: str = Field(min_length=1)
    target: str
    to_version: str
    window: str | None = None
    by: str
    reason: str = Field(max_length=2000)


class UpgradeCancelled(_Data):
    """A run was cancelled before its upgrade stage started (by someone; ``reason`` says why)."""

    run: str = Field(min_length=1)
    target: str
    kind: Kind
    to_version: str
    window: str | None = None
    by: str
    reason: str = Field(default="", max_length=2000)


class ControlChanged(_Data):
    """An operator paused, resumed, froze or unfroze a scope; one event per window concerned, so
    that window's waves are looked at again."""

    action: Literal["pause", "resume", "freeze", "unfreeze"]
    scope: str
    window: str = Field(min_length=1)
    by: str


class NotificationRequested(_Data):
    """Post a short message to the configured chat webhooks."""

    text: str = Field(min_length=1, max_length=4000)
    channel: str | None = None
    severity: Literal["info", "warning", "error"] = "info"


class Echo(_Data):
    """Trivial event proving the pipeline end to end: the echo function answers it."""

    message: str = Field(min_length=1, max_length=1000)
    reply: bool = Field(
        default=True, description="False on the echo's own answer, so it is not echoed again."
    )


class Tick(_Data):
    """A scheduled function's period started (one per function and period, deduplicated)."""

    at: datetime


class EventSpec(BaseModel):
    model_config = ConfigDict(defer_build=True)  # as _Data's: built when first used, not at import
    # ``model`` first: the field named ``type`` below shadows the builtin inside the class body.
    model: type[BaseModel]
    type: str
    description: str
    extra: dict[str, Any] = {}


class T:
    """Event type names, so code never spells a type string twice."""

    VERSION_RELEASED = "dev.upshift.version.released"
    WINDOW_OPENED = "dev.upshift.window.opened"
    WINDOW_CLOSING = "dev.upshift.window.closing"
    UPGRADE_PLANNED = "dev.upshift.upgrade.planned"
    UPGRADE_REQUESTED = "dev.upshift.upgrade.requested"
    STAGE_REQUESTED = "dev.upshift.stage.requested"
    STAGE_STARTED = "dev.upshift.stage.started"
    JOB_POLL = "dev.upshift.job.poll"
    STAGE_SUCCEEDED = "dev.upshift.stage.succeeded"
    STAGE_FAILED = "dev.upshift.stage.failed"
    UPGRADE_SUCCEEDED = "dev.upshift.upgrade.succeeded"
    UPGRADE_FAILED = "dev.upshift.upgrade.failed"
    UPGRADE_HALTED = "dev.upshift.upgrade.halted"
    WAVE_READY = "dev.upshift.wave.ready"
    CHAT_COMMAND = "dev.upshift.chat.command"
    CHAT_REPLY = "dev.upshift.chat.reply"
    APPROVAL_REQUESTED = "dev.upshift.approval.requested"
    RUN_APPROVED = "dev.upshift.run.approved"
    RUN_DENIED = "dev.upshift.run.denied"
    UPGRADE_CANCELLED = "dev.upshift.upgrade.cancelled"
    CONTROL_CHANGED = "dev.upshift.control.changed"
    NOTIFICATION_REQUESTED = "dev.upshift.notification.requested"
    ECHO = "dev.upshift.echo"
    CLOCK_TICK = "dev.upshift.clock.tick"
    EVENT_DEAD_LETTERED = "dev.upshift.event.deadlettered"


def _spec(type_: str, model: type[BaseModel]) -> EventSpec:
    doc = (model.__doc__ or type_).strip().splitlines()[0]
    return EventSpec(type=type_, model=model, description=doc)


CATALOG: dict[str, EventSpec] = {
    s.type: s
    for s in (
        _spec(T.VERSION_RELEASED, VersionReleased),
        _spec(T.WINDOW_OPENED, WindowOpened),
        _spec(T.WINDOW_CLOSING, WindowClosing),
        _spec(T.UPGRADE_PLANNED, UpgradePlanned),
        _spec(T.UPGRADE_REQUESTED, UpgradeRequested),
        _spec(T.STAGE_REQUESTED, StageRequested),
        _spec(T.STAGE_STARTED, StageStarted),
        _spec(T.JOB_POLL, JobPoll),
        _spec(T.STAGE_SUCCEEDED, StageSucceeded),
        _spec(T.STAGE_FAILED, StageFailed),
        _spec(T.UPGRADE_SUCCEEDED, UpgradeSucceeded),
        _spec(T.UPGRADE_FAILED, UpgradeFailed),
        _spec(T.UPGRADE_HALTED, UpgradeHalted),
        _spec(T.WAVE_READY, WaveReady),
        _spec(T.CHAT_COMMAND, ChatCommand),
        _spec(T.CHAT_REPLY, ChatReply),
        _spec(T.APPROVAL_REQUESTED, ApprovalRequested),
        _spec(T.RUN_APPROVED, RunApproved),
        _spec(T.RUN_DENIED, RunDenied),
        _spec(T.UPGRADE_CANCELLED, UpgradeCancelled),
        _spec(T.CONTROL_CHANGED, ControlChanged),
        _spec(T.NOTIFICATION_REQUESTED, NotificationRequested),
        _spec(T.ECHO, Echo),
        _spec(T.CLOCK_TICK, Tick),
        _spec(T.EVENT_DEAD_LETTERED, DeadLettered),
    )
}


def model_for(type_: str) -> type[BaseModel]:
    """The data model of an event type; ``KeyError`` for an unknown type."""
    return CATALOG[type_].model
