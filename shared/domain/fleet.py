"""The fleet config: clouds, windows, targets, waves, policies, feeds, hooks, notifications.

Loaded from YAML with :func:`load_fleet`; every mistake is a ConfigError naming the file, the
line and the field. Credentials are never here: only the *names* of environment variables
that hold them (``*_env`` fields).

```yaml
clouds:
  huawei: {region: ap-southeast-1, project_id: 0483b6b1..., ak_env: HW_AK, sk_env: HW_SK}
  oceanbase: {url: https://ocp.example.internal, user_env: OCP_USER, password_env: OCP_PASSWORD}
  ncloud: {region: KR, access_key_env: NCP_AK, secret_key_env: NCP_SK}
windows:
  sat-night: {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h, timezone: Asia/Seoul, cutoff: 45m}
targets:
  - {name: kafka-canary, kind: ncloud-kafka, cluster: 3432149, window: sat-night, wave: 0,
     kafka: {config_groups: {"3903006": 11}}}
  - {name: cce-prod-a, kind: cce, cluster_id: 7378a198-..., window: sat-night, wave: 1,
     strategy: {user_defined_step: 20}}
policies:
  - {match: {kind: starrocks}, track: "3.3", min_release_age: 7d}
auth:   # bearer tokens of POST /events and /hooks/release (see Token); none: /events refuses all
  tokens:
    - {name: release-bot, token_env: UPSHIFT_RELEASE_TOKEN, role: operator, publish: [version.released]}
```
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from events.catalog import Kind
from shared.clouds.huawei.config import HuaweiConfig
from shared.clouds.ncloud.client import NcloudConfig
from shared.clouds.oceanbase.client import OceanBaseConfig
from shared.domain.access import Role, check_publish_list
from shared.domain.approvals import Approval
from shared.domain.chat import Chat
from shared.domain.durations import Duration, parse_duration
from shared.domain.freezes import FreezeRule, freeze_problems
from shared.domain.options import CceOptions, KafkaOptions, OceanBaseOptions, StarRocksOptions
from shared.domain.rbac import Grant, rbac_problems
from shared.domain.windows import schedule_problem, timezone_problem
from shared.errors import ConfigError
from shared.yamlconf import load_yaml_model, parse_yaml_model

__all__ = [
    "DEFAULT_PRODUCT",
    "KINDS",
    "Auth",
    "Feed",
    "Fleet",
    "Policy",
    "Target",
    "Token",
    "Window",
    "load_fleet",
    "parse_duration",
    "parse_fleet",
]

#: The kinds of target, as the event catalog names them (one Literal for fleet and events).
KINDS: tuple[str, ...] = get_args(Kind)
#: The product whose releases a kind follows, unless a target says otherwise.
DEFAULT_PRODUCT = {
    "cce": "cce",
    "autopilot": "cce-autopilot",
    "starrocks": "starrocks",
    "oceanbase": "oceanbase",
    "ncloud-kafka": "kafka",
}


def _as_str(v: Any) -> Any:
    # YAML reads `cluster_id: 22` or `version: 3.3` as numbers; ids and versions are strings.
    return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


Str = Annotated[str, BeforeValidator(_as_str), WithJsonSchema({"type": ["string", "number"]})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """A recurring maintenance window: when it opens (RRULE or cron), how long, where, cutoff."""

    rrule: str | None = None
    cron: str | None = None
    duration: Duration
    timezone: str = "UTC"
    #: No stage may start in the last ``cutoff`` of the window.
    cutoff: Duration = timedelta(0)
    #: At most this many targets upgrading at once in this window.
    concurrency: int = Field(default=10, ge=1)

    @field_validator("rrule", "cron")
    @classmethod
    def _schedule(cls, v: str | None, info: ValidationInfo) -> str | None:
        # refused at load (file:line and the window's name), not by every tick of the window clock
        problem = schedule_problem(v, None) if info.field_name == "rrule" else schedule_problem(None, v)
        if problem is not None:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _check(self) -> Window:
        if (self.rrule is None) == (self.cron is None):
            raise ValueError("give exactly one of rrule or cron")
        if self.cutoff >= self.duration:
            raise ValueError("cutoff must be shorter than duration")
        problem = timezone_problem(self.timezone)
        if problem is not None:
            raise ValueError(problem)
        return self


class Strategy(_Strict):
    """CCE in-place rolling update: how many nodes per step (the API's ``userDefinedStep``)."""

    user_defined_step: int = Field(default=20, ge=1, le=120)


#: Which options block belongs to which kind.
_OPTIONS = {
    "cce": "cce",
    "autopilot": "cce",
    "ncloud-kafka": "kafka",
    "oceanbase": "oceanbase",
    "starrocks": "starrocks",
}


class Target(_Strict):
    """One cluster or instance. Which id fields are required depends on ``kind``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9\-_.]{0,62}$")
    kind: Kind
    window: str | None = None
    wave: int = Field(default=0, ge=0)
    product: str | None = None
    #: The version it runs now, when known up front (else read from the vendor / the ledger).
    version: Str | None = None
    # cce / autopilot / oceanbase
    cluster_id: Str | None = None
    # starrocks: the TaurusDB instance id, and the StarRocks instance id where the API wants it
    instance_id: Str | None = None
    starrocks_instance_id: Str | None = None
    # ncloud-kafka: serviceGroupInstanceNo; a config group belongs to one Kafka version, so the
    # upgrade's is kafka.config_groups[target version] or looked up (config_group: a fallback,
    # used only when the vendor lists it for the target version)
    cluster: int | None = None
    config_group: int | None = None
    # oceanbase: what the OCP upgrade body needs
    operating_system: str | None = None
    strategy: Strategy = Strategy()
    #: Per-vendor options (shared/domain/options/): only the target's own kind's block may be set.
    cce: CceOptions = CceOptions()
    kafka: KafkaOptions = KafkaOptions()
    oceanbase: OceanBaseOptions = OceanBaseOptions()
    starrocks: StarRocksOptions = StarRocksOptions()
    labels: dict[str, str] = {}

    @model_validator(mode="after")
    def _ids(self) -> Target:
        need = {
            "cce": ("cluster_id",),
            "autopilot": ("cluster_id",),
            "oceanbase": ("cluster_id",),
            "starrocks": ("instance_id",),
            "ncloud-kafka": ("cluster",),
        }[self.kind]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind} target needs {' and '.join(missing)}")
        own = _OPTIONS[self.kind]
        alien = sorted(f for f in self.model_fields_set & set(_OPTIONS.values()) if f != own)
        if alien:
            raise ValueError(f"a {self.kind} target takes {own}: options, not {', '.join(alien)}")
        # what the vendor will refuse at upgrade time (ids' form, OCP's operating system) is
        # refused now, when the fleet loads, naming the field
        check = getattr(getattr(self, own), "check_target", None)
        if check is not None:
            check(self)
        return self

    @property
    def product_key(self) -> str:
        return self.product or DEFAULT_PRODUCT[self.kind]

    @property
    def vendor_id(self) -> str:
        """The id the vendor knows this target by."""
        return str(self.cluster if self.kind == "ncloud-kafka" else self.instance_id or self.cluster_id)


class Match(_Strict):
    kind: Kind | None = None
    name: str | None = Field(default=None, description="glob on the target name, e.g. 'cce-prod-*'")
    product: str | None = None
    labels: dict[str, str] = {}


class Policy(_Strict):
    """What releases a matching target takes."""

    match: Match = Match()
    #: Stay on this line: '3.3' takes 3.3.x only; 'v1.29' takes v1.29.x.
    track: Str | None = None
    #: A release must be at least this old before it is planned (soak).
    min_release_age: Duration = timedelta(0)
    skip: list[Str] = []
    #: Never plan anything for matching targets.
    frozen: bool = False
    #: Matching targets' runs wait for people before they start (:mod:`shared.domain.approvals`).
    approval: Approval | None = None


class Feed(_Strict):
    url: str = Field(pattern=r"^https?://")
    product: str
    #: regex with one group extracting the version from an entry's tag/title
    tag_pattern: str = r"^v?(.+)$"

    @field_validator("tag_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            if re.compile(v).groups < 1:
                raise ValueError("tag_pattern needs one capturing group (the version)")
        except re.error as exc:
            raise ValueError(f"not a valid regex: {exc}") from None
        return v


class Hooks(_Strict):
    #: env var holding the GitHub webhook secret (X-Hub-Signature-256)
    github_secret_env: str | None = None
    #: accept ``POST /hooks/release`` with neither a GitHub signature nor a bearer token
    #: (``upshift serve`` warns about it at start); otherwise one of the two is required
    allow_unauthenticated: bool = False
    #: known products (release intake refuses others); default: every target's product
    products: list[str] = []


class Token(_Strict):
    """One bearer token of the ingress: who it is, where its value lives, what it may publish.

    ```yaml
    auth:
      tokens:
        - {name: release-bot, token_env: UPSHIFT_RELEASE_TOKEN, role: operator, publish: [version.released]}
        - {name: chatops, token_env: UPSHIFT_CHAT_TOKEN, role: approver,
           publish: [chat.command, upgrade.requested]}
        - {name: dashboard, token_env: UPSHIFT_DASHBOARD_TOKEN, role: viewer}   # publishes nothing
    ```

    ``publish`` takes full (``dev.upshift.echo``) or short (``echo``) type names; it may list only
    types :data:`shared.domain.access.PUBLISHABLE` allows the role — never an internal one.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,62}$")
    #: the environment variable that holds the token's value (never the value itself)
    token_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    role: Role
    #: the event types it may publish (empty: none)
    publish: list[str] = []

    @field_validator("publish")
    @classmethod
    def _publishable(cls, v: list[str], info: ValidationInfo) -> list[str]:
        role = info.data.get("role")
        if role is None:  # the role itself was refused; that error is the one to report
            return v
        return check_publish_list(role, v)


class Auth(_Strict):
    """Credentials of the ingress (``POST /events``, ``POST /hooks/release``); see :class:`Token`.

    With no tokens, ``POST /events`` refuses every request (401) and ``upshift serve`` says so at start.
    """

    tokens: list[Token] = []

    @model_validator(mode="after")
    def _unique(self) -> Auth:
        names: set[str] = set()
        envs: dict[str, str] = {}
        for t in self.tokens:
            if t.name in names:
                raise ValueError(f"duplicate token name {t.name!r}")
            if t.token_env in envs:
                raise ValueError(f"tokens {envs[t.token_env]!r} and {t.name!r} both read {t.token_env}")
            names.add(t.name)
            envs[t.token_env] = t.name
        return self


class Metrics(_Strict):
    """``GET /metrics`` of ``upshift serve`` and ``upshift worker --metrics-port``: open by default;
    ``require_token`` asks for a bearer token of ``auth.tokens`` (any role), else 401."""

    require_token: bool = False


class Notify(_Strict):
    #: env vars holding Slack-compatible incoming-webhook URLs (URLs are secrets)
    webhook_envs: list[str] = []


class Waves(_Strict):
    #: how long a wave must have succeeded before the next one starts
    bake: Duration = timedelta(minutes=30)
    #: per wave number: its runs wait for approval (a matching policy's ``approval`` wins)
    approval: dict[int, Approval] = {}


class Clouds(_Strict):
    # populate_by_name: ``Clouds(oceanbase=...)`` in code; the alias choices already take the name.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    huawei: HuaweiConfig | None = None
    #: OceanBase under OCP. ``ocp`` is the deprecated spelling of this key, still read so that
    #: existing fleet files keep loading; giving both is an error.
    oceanbase: OceanBaseConfig | None = Field(None, validation_alias=AliasChoices("oceanbase", "ocp"))
    ncloud: NcloudConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_oceanbase(cls, data: Any) -> Any:
        if isinstance(data, dict) and "oceanbase" in data and "ocp" in data:
            raise ValueError("give clouds.oceanbase or its deprecated alias clouds.ocp, not both")
        return data


#: Which ``clouds:`` entry a kind of target needs.
_CLOUD = {
    "cce": "huawei",
    "autopilot": "huawei",
    "starrocks": "huawei",
    "oceanbase": "oceanbase",
    "ncloud-kafka": "ncloud",
}


class Fleet(_Strict):
    clouds: Clouds = Clouds()
    windows: dict[str, Window] = {}
    targets: list[Target] = Field(min_length=1)
    policies: list[Policy] = []
    feeds: list[Feed] = []
    hooks: Hooks = Hooks()
    auth: Auth = Auth()
    notify: Notify = Notify()
    #: who may read ``GET /metrics`` (:class:`Metrics`)
    metrics: Metrics = Metrics()
    waves: Waves = Waves()
    #: the Slack app / Mattermost command (:mod:`shared.domain.chat`)
    chat: Chat = Chat()
    #: chat identities, bot tokens, CLI users → roles (:mod:`shared.domain.rbac`)
    rbac: list[Grant] = []
    #: blackout dates and recurring freezes (:mod:`shared.domain.freezes`)
    freezes: list[FreezeRule] = []
    #: expected stage durations by kind and stage when the ledger has no history, e.g. {cce: {upgrade: 40m}}
    durations: dict[Kind, dict[str, Duration]] = {}

    @model_validator(mode="after")
    def _refs(self) -> Fleet:
        # each error is placed on the target that makes it (its line in the file), not the root
        errors: list[InitErrorDetails] = []

        def refuse(i: int, field: str, message: str) -> None:
            value = getattr(self.targets[i], field)
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("fleet_reference", message),
                    loc=("targets", i, field),
                    input=value,
                )
            )

        first: dict[str, int] = {}
        missing_cloud: set[str] = set()
        for i, t in enumerate(self.targets):
            if t.name in first:
                refuse(i, "name", f"duplicate target name {t.name!r} (also targets[{first[t.name]}])")
            first.setdefault(t.name, i)
            if t.window is not None and t.window not in self.windows:
                known = ", ".join(sorted(self.windows)) or "none defined"
                refuse(i, "window", f"unknown window {t.window!r} (windows: {known})")
            cloud = _CLOUD[t.kind]
            if getattr(self.clouds, cloud) is None and cloud not in missing_cloud:
                missing_cloud.add(cloud)
                refuse(i, "kind", f"clouds.{cloud} is required for {t.kind} targets")
        for loc, message, value in (*rbac_problems(self), *freeze_problems(self)):
            errors.append(
                InitErrorDetails(type=PydanticCustomError("fleet_reference", message), loc=loc, input=value)
            )
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    @functools.cached_property
    def _by_name(self) -> tuple[list[Target], dict[str, Target]]:
        """name -> target, with the list it indexes. A cached property, not a private attribute:
        those take part in ``==``; this one is not a field, so equality and dumps ignore it."""
        by_name: dict[str, Target] = {}
        for t in self.targets:
            by_name.setdefault(t.name, t)  # names are unique (``_refs``); the first wins, as a scan would
        return self.targets, by_name

    def target(self, name: str) -> Target:
        """The target called ``name`` (KeyError if none) in O(1): it runs once per event, and
        with 10,000 targets a scan of the list was the hot path."""
        targets, by_name = self._by_name
        if targets is not self.targets:  # a model_copy(update=...) copied the cache of another list
            self.__dict__.pop("_by_name", None)
            targets, by_name = self._by_name
        return by_name[name]

    @property
    def has_anytime_targets(self) -> bool:
        """Whether a target has no window (its runs share the ``_anytime`` waves document)."""
        return any(t.window is None for t in self.targets)

    @property
    def products(self) -> set[str]:
        return set(self.hooks.products) or {t.product_key for t in self.targets}


def parse_fleet(text: str, source: str = "<fleet>") -> Fleet:
    return parse_yaml_model(text, Fleet, source)


def load_fleet(path: str | Path) -> Fleet:
    """The fleet from a YAML file; ConfigError naming file, line and field when it is wrong."""
    fleet = load_yaml_model(path, Fleet)
    if not fleet.targets:
        raise ConfigError(str(path), "targets: at least one target")
    return fleet
