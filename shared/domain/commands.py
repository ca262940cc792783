"""The ChatOps command grammar: the text after ``/upshift``, parsed into typed, frozen commands.

Pure, no I/O, no authorization decision: the chat edges (Slack, Mattermost), bots posting
``chat.command``, the CLI and the HTTP API all call :func:`parse` and get either a
:data:`Command` or a :class:`CommandError` — never an exception of another type, whatever the
text. Authorizing, deciding and emitting control events come after, elsewhere.

Contract:

* **One table** (:data:`GRAMMAR`) holds every command: its name, its argument synopsis, a
  one-line summary, the least :data:`~shared.domain.access.Role` that may run it, and its
  parser. :func:`usage`, :data:`HELP` (what ``/upshift help`` prints) and :data:`MIN_ROLE` are
  generated from it; there is no second copy of the grammar.
* **Tokens** are the text split on whitespace (runs of whitespace collapse: a reason or a
  comment comes back joined with single spaces; no quoting). The command word and the keywords
  (``to``, ``for``, ``now``, ``next-window``, ``all``, the ``kind:``/``window:``/``wave:``
  prefixes) are case-insensitive; names and versions are kept as typed. Empty text is ``help``.
* **Limits**: the whole text at most :data:`MAX_TEXT` characters (the ``chat.command`` event's
  ``text`` limit, read from the catalog); a name, version or run id at most
  :data:`shared.limits.LIMITS` ``.max_name``; control characters and lone surrogates are refused.
* **A scope** is a target name (the fleet's target-name pattern), ``kind:<kind>`` (a
  :data:`events.catalog.Kind`), ``window:<name>``, ``wave:<n>`` (n ≥ 0) or ``all``.
* **A run** is an id shaped like :func:`shared.domain.stages.run_id` makes: ``r`` and 15
  lower-case hex digits (:data:`RUN_ID`). Where a run *or* a target/scope may stand
  (``status [target|run]``, ``cancel <run|scope>``) a token of that exact shape is a run, anything
  else a target or scope. A target whose name has that shape can therefore only be reached by
  ``kind:``/``window:``/``wave:`` scopes there (the fleet should not name targets so).
* **Durations** are the fleet file's (``4h``, ``45m``, ``1h30m``, ``7d``), parsed by
  :func:`shared.domain.fleet.parse_duration`; a freeze's must be above zero.
* **Versions**: ``plan <product>=<version>`` parses the version with the product's scheme
  (:func:`shared.domain.versions.parse_version`); ``upgrade`` (whose target's kind is known only
  with the fleet) checks the version's shape (:data:`VERSION_TEXT`) and leaves the rest to the
  planner.
* **Errors**: :class:`CommandError` carries ``message`` (what is wrong, for a human),
  ``usage`` (the usage line of the command concerned — for an unknown command, the synopsis of
  all) and ``command`` (its name, or None). :class:`UnknownCommand` is the unknown-command case.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Literal, get_args

from annotated_types import MaxLen

from events.catalog import ChatCommand, Kind
from shared.domain.access import Role
from shared.domain.durations import parse_duration
from shared.domain.versions import BadVersion, parse_version
from shared.limits import LIMITS

__all__ = [
    "GRAMMAR",
    "HELP",
    "KINDS",
    "MAX_TEXT",
    "MIN_ROLE",
    "NAME",
    "RUN_ID",
    "SCOPE_USAGE",
    "SYNOPSIS",
    "TARGET_NAME",
    "VERSION_TEXT",
    "AllScope",
    "Approve",
    "Audit",
    "Cancel",
    "Command",
    "CommandError",
    "Deny",
    "Freeze",
    "Freezes",
    "Help",
    "KindScope",
    "Pause",
    "Plan",
    "Resume",
    "Run",
    "Scope",
    "Spec",
    "Status",
    "TargetScope",
    "Unfreeze",
    "UnknownCommand",
    "Upgrade",
    "WaveScope",
    "WindowScope",
    "min_role",
    "parse",
    "parse_scope",
    "scope_text",
    "usage",
]

#: The longest command text: the ``chat.command`` event's ``text`` limit.
MAX_TEXT: int = next(m.max_length for m in ChatCommand.model_fields["text"].metadata if isinstance(m, MaxLen))
#: A run id as :func:`shared.domain.stages.run_id` makes it.
RUN_ID = re.compile(r"r[0-9a-f]{15}")
#: A target's name (the fleet file's ``targets[].name`` pattern).
TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9\-_.]{0,62}$")
#: A window's name or a product key.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,62}$")
#: What an ``upgrade`` version may look like before the planner parses it with the target's kind.
VERSION_TEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_+]{0,63}$")
#: The target kinds a ``kind:`` scope may name.
KINDS: tuple[str, ...] = get_args(Kind)


class CommandError(ValueError):
    """A command text refused: ``message`` says why, ``usage`` is the usage line to show."""

    def __init__(self, message: str, usage: str, command: str | None = None) -> None:
        super().__init__(f"{message}\nusage: {usage}")
        self.message = message
        self.usage = usage
        self.command = command


class UnknownCommand(CommandError):
    """The first word is no command of the grammar."""


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """A run, by its id."""

    id: str


@dataclass(frozen=True, slots=True)
class TargetScope:
    name: str


@dataclass(frozen=True, slots=True)
class KindScope:
    kind: Kind


@dataclass(frozen=True, slots=True)
class WindowScope:
    name: str


@dataclass(frozen=True, slots=True)
class WaveScope:
    wave: int


@dataclass(frozen=True, slots=True)
class AllScope:
    pass


Scope = TargetScope | KindScope | WindowScope | WaveScope | AllScope


@dataclass(frozen=True, slots=True)
class Help:
    name: ClassVar[str] = "help"


@dataclass(frozen=True, slots=True)
class Status:
    name: ClassVar[str] = "status"
    what: Run | TargetScope | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    name: ClassVar[str] = "plan"
    product: str
    version: str


@dataclass(frozen=True, slots=True)
class Upgrade:
    name: ClassVar[str] = "upgrade"
    target: str
    version: str
    when: Literal["now", "next-window"] = "next-window"


@dataclass(frozen=True, slots=True)
class Approve:
    name: ClassVar[str] = "approve"
    run: Run
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Deny:
    name: ClassVar[str] = "deny"
    run: Run
    reason: str


@dataclass(frozen=True, slots=True)
class Pause:
    name: ClassVar[str] = "pause"
    scope: Scope


@dataclass(frozen=True, slots=True)
class Resume:
    name: ClassVar[str] = "resume"
    scope: Scope


@dataclass(frozen=True, slots=True)
class Cancel:
    name: ClassVar[str] = "cancel"
    what: Run | Scope


@dataclass(frozen=True, slots=True)
class Freeze:
    name: ClassVar[str] = "freeze"
    scope: Scope
    duration: timedelta
    reason: str


@dataclass(frozen=True, slots=True)
class Unfreeze:
    name: ClassVar[str] = "unfreeze"
    scope: Scope


@dataclass(frozen=True, slots=True)
class Freezes:
    name: ClassVar[str] = "freezes"


@dataclass(frozen=True, slots=True)
class Audit:
    name: ClassVar[str] = "audit"
    run: Run | None = None


Command = (
    Help
    | Status
    | Plan
    | Upgrade
    | Approve
    | Deny
    | Pause
    | Resume
    | Cancel
    | Freeze
    | Unfreeze
    | Freezes
    | Audit
)


# --- argument parsers -----------------------------------------------------------------------


class _Bad(Exception):
    """Raised inside an argument parser; :func:`parse` turns it into a CommandError."""


def _arity(args: Sequence[str], low: int, high: int | None) -> None:
    if len(args) < low:
        raise _Bad("missing arguments")
    if high is not None and len(args) > high:
        raise _Bad(f"unexpected {' '.join(args[high:])[:80]!r}")


def _run(token: str) -> Run:
    if not RUN_ID.fullmatch(token):
        raise _Bad(f"{token[:80]!r} is not a run id (like 'r0123456789abcde')")
    return Run(token)


def _target(token: str) -> str:
    if not TARGET_NAME.match(token):
        raise _Bad(f"{token[:80]!r} is not a target name (lower-case letters, digits, '-', '_', '.')")
    return token


def _scope(token: str) -> Scope:
    low = token.lower()
    if low == "all":
        return AllScope()
    prefix, sep, rest = token.partition(":")
    if sep:
        match prefix.lower():
            case "kind":
                if rest.lower() not in KINDS:
                    raise _Bad(f"unknown kind {rest[:80]!r} (kinds: {', '.join(KINDS)})")
                kind: Kind = KINDS[KINDS.index(rest.lower())]  # type: ignore[assignment]
                return KindScope(kind)
            case "window":
                if not NAME.match(rest):
                    raise _Bad(f"{rest[:80]!r} is not a window name")
                return WindowScope(rest)
            case "wave":
                if not re.fullmatch(r"[0-9]{1,9}", rest):
                    raise _Bad(f"{rest[:80]!r} is not a wave number (0, 1, 2, …)")
                return WaveScope(int(rest))
            case _:
                raise _Bad(
                    f"{token[:80]!r} is not a scope (a target, kind:<kind>, window:<name>, wave:<n> or all)"
                )
    try:
        return TargetScope(_target(token))
    except _Bad:
        raise _Bad(
            f"{token[:80]!r} is not a scope (a target, kind:<kind>, window:<name>, wave:<n> or all)"
        ) from None


def _run_or_scope(token: str) -> Run | Scope:
    return Run(token) if RUN_ID.fullmatch(token) else _scope(token)


def _help(args: Sequence[str]) -> Help:
    _arity(args, 0, 0)
    return Help()


def _status(args: Sequence[str]) -> Status:
    _arity(args, 0, 1)
    if not args:
        return Status()
    return Status(Run(args[0]) if RUN_ID.fullmatch(args[0]) else TargetScope(_target(args[0])))


def _plan(args: Sequence[str]) -> Plan:
    _arity(args, 1, 1)
    product, sep, version = args[0].partition("=")
    if not sep or not product or not version:
        raise _Bad(f"{args[0][:80]!r} is not <product>=<version> (like starrocks=3.3.2)")
    if not NAME.match(product):
        raise _Bad(f"{product[:80]!r} is not a product name")
    try:
        parse_version(product, version)
    except BadVersion as exc:
        raise _Bad(str(exc)) from None
    return Plan(product, version)


def _upgrade(args: Sequence[str]) -> Upgrade:
    _arity(args, 3, 4)
    target, to, version = args[0], args[1], args[2]
    if to.lower() != "to":
        raise _Bad(f"expected 'to' after the target, not {to[:80]!r}")
    if not VERSION_TEXT.match(version):
        raise _Bad(f"{version[:80]!r} is not a version (like v1.29.3-r0 or 3.3.2)")
    when: Literal["now", "next-window"] = "next-window"
    if len(args) == 4:
        match args[3].lower():
            case "now":
                when = "now"
            case "next-window":
                when = "next-window"
            case other:
                raise _Bad(f"expected 'now' or 'next-window', not {other[:80]!r}")
    return Upgrade(_target(target), version, when)


def _approve(args: Sequence[str]) -> Approve:
    _arity(args, 1, None)
    return Approve(_run(args[0]), " ".join(args[1:]) or None)


def _deny(args: Sequence[str]) -> Deny:
    if len(args) == 1:
        _run(args[0])
        raise _Bad("a denial needs a reason")
    _arity(args, 2, None)
    return Deny(_run(args[0]), " ".join(args[1:]))


def _pause(args: Sequence[str]) -> Pause:
    _arity(args, 1, 1)
    return Pause(_scope(args[0]))


def _resume(args: Sequence[str]) -> Resume:
    _arity(args, 1, 1)
    return Resume(_scope(args[0]))


def _cancel(args: Sequence[str]) -> Cancel:
    _arity(args, 1, 1)
    return Cancel(_run_or_scope(args[0]))


def _freeze(args: Sequence[str]) -> Freeze:
    _arity(args, 3, None)
    scope = _scope(args[0])
    if args[1].lower() != "for":
        raise _Bad(f"expected 'for' after the scope, not {args[1][:80]!r}")
    try:
        duration = parse_duration(args[2])
    except ValueError as exc:
        raise _Bad(str(exc)) from None
    if duration <= timedelta(0):
        raise _Bad("a freeze must last longer than zero")
    if len(args) == 3:
        raise _Bad("a freeze needs a reason")
    return Freeze(scope, duration, " ".join(args[3:]))


def _unfreeze(args: Sequence[str]) -> Unfreeze:
    _arity(args, 1, 1)
    return Unfreeze(_scope(args[0]))


def _freezes(args: Sequence[str]) -> Freezes:
    _arity(args, 0, 0)
    return Freezes()


def _audit(args: Sequence[str]) -> Audit:
    _arity(args, 0, 1)
    return Audit(_run(args[0]) if args else None)


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """One command of the grammar."""

    name: str
    args: str
    summary: str
    role: Role
    parse: Callable[[Sequence[str]], Command]

    @property
    def usage(self) -> str:
        return f"/upshift {self.name}" + (f" {self.args}" if self.args else "")


#: Every command, in the order ``/upshift help`` lists them.
GRAMMAR: tuple[Spec, ...] = (
    Spec("help", "", "this list", "viewer", _help),
    Spec("status", "[target|run]", "the fleet, one target or one run", "viewer", _status),
    Spec("plan", "<product>=<version>", "what an upgrade to that release would do", "viewer", _plan),
    Spec("upgrade", "<target> to <version> [now|next-window]", "ask for an upgrade", "operator", _upgrade),
    Spec("approve", "<run> [comment…]", "approve a run awaiting approval", "approver", _approve),
    Spec("deny", "<run> <reason…>", "deny a run awaiting approval", "approver", _deny),
    Spec("pause", "<scope>", "start no new stage in scope", "operator", _pause),
    Spec("resume", "<scope>", "continue what was paused or halted", "operator", _resume),
    Spec("cancel", "<run|scope>", "end runs that have not started upgrading", "operator", _cancel),
    Spec("freeze", "<scope> for <duration> <reason…>", "block new runs in scope", "operator", _freeze),
    Spec("unfreeze", "<scope>", "lift a freeze", "operator", _unfreeze),
    Spec("freezes", "", "the freezes in force", "viewer", _freezes),
    Spec("audit", "[run]", "who did what (of one run)", "viewer", _audit),
)
_BY_NAME: Mapping[str, Spec] = {s.name: s for s in GRAMMAR}
#: The least role each command needs (authorization itself is decided elsewhere).
MIN_ROLE: Mapping[str, Role] = {s.name: s.role for s in GRAMMAR}
#: The one-line synopsis an unknown command gets.
SYNOPSIS = "/upshift <command> [arguments] — commands: " + ", ".join(s.name for s in GRAMMAR)
_SCOPE_HELP = "<scope>: a target, kind:<" + "|".join(KINDS) + ">, window:<name>, wave:<n> or all"
_WIDTH = max(len(s.usage) for s in GRAMMAR)
#: What ``/upshift help`` prints.
HELP = "\n".join(
    [
        *(f"{s.usage.ljust(_WIDTH)}  {s.summary}" for s in GRAMMAR),
        "",
        _SCOPE_HELP,
        "<duration>: 4h, 45m, 1h30m, 7d",
    ]
)


#: Where a command's free text (reason, comment) starts: tokens from there may be long.
_FREE_FROM: Mapping[str, int] = {"approve": 1, "deny": 1, "freeze": 3}


def usage(name: str | None = None) -> str:
    """The usage line of command ``name``; without one (or an unknown one), the synopsis."""
    spec = _BY_NAME.get(name or "")
    return spec.usage if spec is not None else SYNOPSIS


def min_role(command: Command) -> Role:
    """The least role that may run ``command``."""
    return MIN_ROLE[command.name]


def parse(text: str) -> Command:
    """``text`` (after ``/upshift``) as a :data:`Command`, or :class:`CommandError`."""
    if not isinstance(text, str):
        raise CommandError("a command is text", SYNOPSIS)
    if len(text) > MAX_TEXT:
        raise CommandError(f"a command is at most {MAX_TEXT} characters (this one: {len(text)})", SYNOPSIS)
    bad = next((c for c in text if not c.isspace() and unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise CommandError(f"a command may not hold the control character {bad!r}", SYNOPSIS)
    tokens = text.split()
    if not tokens:
        return Help()
    word, args = tokens[0].lower(), tokens[1:]
    spec = _BY_NAME.get(word)
    if spec is None:
        close = difflib.get_close_matches(word, list(_BY_NAME), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownCommand(f"unknown command {tokens[0][:80]!r}{hint}", SYNOPSIS)
    # a name, version or run id is short; a reason or comment (from _FREE_FROM on) may be long
    named = args[: _FREE_FROM.get(spec.name, len(args))]
    too_long = next((a for a in named if len(a) > LIMITS.max_name), None)
    if too_long is not None:
        raise CommandError(
            f"{too_long[:20]!r}… is longer than {LIMITS.max_name} characters", spec.usage, spec.name
        )
    try:
        return spec.parse(args)
    except _Bad as exc:
        raise CommandError(str(exc), spec.usage, spec.name) from None


#: The usage line of a scope, for refusals of one outside a command (a fleet freeze's ``scope``).
SCOPE_USAGE = "<target> | kind:<kind> | window:<name> | wave:<n> | all"


def parse_scope(text: str) -> Scope:
    """One scope token (``kind:cce``, ``window:sat-night``, ``wave:0``, ``all``, a target name);
    :class:`CommandError` with :data:`SCOPE_USAGE` otherwise."""
    token = text.strip()
    if not token or len(token) > LIMITS.max_name or len(token.split()) != 1:
        raise CommandError(f"{text[:80]!r} is not one scope", SCOPE_USAGE)
    try:
        return _scope(token)
    except _Bad as exc:
        raise CommandError(str(exc), SCOPE_USAGE) from None


def scope_text(scope: Scope) -> str:
    """The scope as typed (:func:`parse_scope` of it gives it back)."""
    match scope:
        case AllScope():
            return "all"
        case KindScope(kind):
            return f"kind:{kind}"
        case WindowScope(name):
            return f"window:{name}"
        case WaveScope(wave):
            return f"wave:{wave}"
        case TargetScope(name):
            return name
    raise TypeError(scope)
