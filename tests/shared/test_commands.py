"""The ChatOps command grammar (shared/domain/commands.py): every command, its bad forms, the help
text, the roles, and a fuzz that parse only ever returns a command or raises CommandError."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import ChatCommand
from shared.domain.access import ROLES
from shared.domain.commands import (
    GRAMMAR,
    HELP,
    KINDS,
    MAX_TEXT,
    MIN_ROLE,
    RUN_ID,
    SYNOPSIS,
    TARGET_NAME,
    AllScope,
    Approve,
    Audit,
    Cancel,
    Command,
    CommandError,
    Deny,
    Freeze,
    Freezes,
    Help,
    KindScope,
    Pause,
    Plan,
    Resume,
    Run,
    Status,
    TargetScope,
    Unfreeze,
    UnknownCommand,
    Upgrade,
    WaveScope,
    WindowScope,
    min_role,
    parse,
    usage,
)
from shared.domain.fleet import Target
from shared.domain.stages import run_id
from shared.limits import LIMITS

RUN = run_id("cce-prod-1", "v1.29.3-r0")


def test_run_ids_of_stages_have_the_grammar_shape() -> None:
    for target, version in [("a", "1"), ("cce-prod-1", "v1.29.3-r0"), ("x" * 60, "3.3.0-rc1")]:
        assert RUN_ID.fullmatch(run_id(target, version))


def test_target_name_pattern_is_the_fleet_files() -> None:
    assert getattr(Target.model_fields["name"].metadata[0], "pattern", None) == TARGET_NAME.pattern


def test_max_text_is_the_chat_command_limit() -> None:
    ChatCommand(channel="c", user="u", text="x" * MAX_TEXT)
    assert MAX_TEXT == 2000


GOOD: list[tuple[str, Command]] = [
    ("", Help()),
    ("   ", Help()),
    ("help", Help()),
    ("HELP", Help()),
    ("status", Status()),
    ("status cce-prod-1", Status(TargetScope("cce-prod-1"))),
    (f"status {RUN}", Status(Run(RUN))),
    ("plan starrocks=3.3.2", Plan("starrocks", "3.3.2")),
    ("plan cce=v1.29.3-r0", Plan("cce", "v1.29.3-r0")),
    ("plan ncloud-kafka=3503006", Plan("ncloud-kafka", "3503006")),
    ("upgrade cce-prod-1 to v1.29.3-r0", Upgrade("cce-prod-1", "v1.29.3-r0", "next-window")),
    ("upgrade cce-prod-1 TO v1.29.3-r0 now", Upgrade("cce-prod-1", "v1.29.3-r0", "now")),
    ("upgrade sr.1 to 3.3.2 next-window", Upgrade("sr.1", "3.3.2", "next-window")),
    (f"approve {RUN}", Approve(Run(RUN))),
    (f"approve {RUN}  looks   good", Approve(Run(RUN), "looks good")),
    (f"deny {RUN} not before the audit", Deny(Run(RUN), "not before the audit")),
    ("pause all", Pause(AllScope())),
    ("pause ALL", Pause(AllScope())),
    ("pause kind:cce", Pause(KindScope("cce"))),
    ("pause Kind:NCLOUD-KAFKA", Pause(KindScope("ncloud-kafka"))),
    ("resume window:Sunday-night", Resume(WindowScope("Sunday-night"))),
    ("resume wave:2", Resume(WaveScope(2))),
    ("resume cce-prod-1", Resume(TargetScope("cce-prod-1"))),
    (f"cancel {RUN}", Cancel(Run(RUN))),
    ("cancel cce-prod-1", Cancel(TargetScope("cce-prod-1"))),
    ("cancel wave:0", Cancel(WaveScope(0))),
    ("freeze all for 4h end of quarter", Freeze(AllScope(), timedelta(hours=4), "end of quarter")),
    (
        "freeze kind:oceanbase for 1h30m db migration",
        Freeze(KindScope("oceanbase"), timedelta(minutes=90), "db migration"),
    ),
    ("freeze wave:1 FOR 7d holidays", Freeze(WaveScope(1), timedelta(days=7), "holidays")),
    ("freeze cce-prod-1 for 45m x", Freeze(TargetScope("cce-prod-1"), timedelta(minutes=45), "x")),
    ("unfreeze all", Unfreeze(AllScope())),
    ("unfreeze window:w", Unfreeze(WindowScope("w"))),
    ("freezes", Freezes()),
    ("audit", Audit()),
    (f"audit {RUN}", Audit(Run(RUN))),
    ("\tstatus\n", Status()),
]


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[t or "<empty>" for t, _ in GOOD])
def test_parses(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_every_command_has_a_happy_path() -> None:
    assert {type(c).name for _, c in GOOD} == {s.name for s in GRAMMAR}


def test_long_free_text_is_kept() -> None:
    reason = " ".join(["word"] * 300)
    assert parse(f"deny {RUN} {reason}") == Deny(Run(RUN), reason)
    long_word = "y" * 200
    assert parse(f"approve {RUN} {long_word}") == Approve(Run(RUN), long_word)


def test_commands_are_frozen() -> None:
    cmd = parse("pause all")
    with pytest.raises(AttributeError):
        cmd.scope = WaveScope(1)  # type: ignore[misc, union-attr]


LONG = "a" * (LIMITS.max_name + 1)
BAD: list[tuple[str, str]] = [
    ("help me", "help"),
    ("status a b", "status"),
    ("status Bad_Name", "status"),
    ("plan", "plan"),
    ("plan starrocks", "plan"),
    ("plan starrocks=", "plan"),
    ("plan =3.3.2", "plan"),
    ("plan starrocks=three", "plan"),
    ("plan cce=v1.29.x", "plan"),
    ("plan starrocks=3.3.2 extra", "plan"),
    (f"plan starrocks={'1.' * 40}1", "plan"),
    ("upgrade", "upgrade"),
    ("upgrade cce-prod-1", "upgrade"),
    ("upgrade cce-prod-1 to", "upgrade"),
    ("upgrade cce-prod-1 v1.29 now", "upgrade"),
    ("upgrade cce-prod-1 into v1.29", "upgrade"),
    ("upgrade cce-prod-1 to v1.29 later", "upgrade"),
    ("upgrade cce-prod-1 to v1.29 now extra", "upgrade"),
    ("upgrade cce-prod-1 to ../etc", "upgrade"),
    ("upgrade CCE to v1.29", "upgrade"),
    (f"upgrade {LONG} to v1.29", "upgrade"),
    (f"upgrade cce-prod-1 to {LONG}", "upgrade"),
    ("approve", "approve"),
    ("approve cce-prod-1", "approve"),
    ("approve R0123456789ABCDE", "approve"),
    ("approve r0123456789abcd", "approve"),
    ("deny", "deny"),
    (f"deny {RUN}", "deny"),
    ("deny not-a-run because", "deny"),
    ("pause", "pause"),
    ("pause all now", "pause"),
    ("pause kind:vm", "pause"),
    ("pause kind:", "pause"),
    ("pause window:", "pause"),
    ("pause window:-x", "pause"),
    ("pause wave:-1", "pause"),
    ("pause wave:x", "pause"),
    ("pause wave:1234567890", "pause"),
    ("pause region:eu", "pause"),
    ("pause Prod", "pause"),
    ("resume", "resume"),
    ("resume a b", "resume"),
    ("cancel", "cancel"),
    ("cancel kind:nope", "cancel"),
    (f"cancel {RUN} {RUN}", "cancel"),
    ("freeze", "freeze"),
    ("freeze all", "freeze"),
    ("freeze all for", "freeze"),
    ("freeze all for 4h", "freeze"),
    ("freeze all during 4h reason", "freeze"),
    ("freeze all for four-hours reason", "freeze"),
    ("freeze all for 4x reason", "freeze"),
    ("freeze all for 0m reason", "freeze"),
    ("freeze all for -4h reason", "freeze"),
    (f"freeze all for {'9' * 30}d reason", "freeze"),
    ("freeze kind:vm for 4h reason", "freeze"),
    ("unfreeze", "unfreeze"),
    ("unfreeze all kind:cce", "unfreeze"),
    ("freezes all", "freezes"),
    ("audit cce-prod-1", "audit"),
    (f"audit {RUN} {RUN}", "audit"),
]


@pytest.mark.parametrize(("text", "command"), BAD, ids=[t[:60] for t, _ in BAD])
def test_bad_forms_get_the_usage_line(text: str, command: str) -> None:
    with pytest.raises(CommandError) as err:
        parse(text)
    assert type(err.value) is CommandError
    assert err.value.command == command
    assert err.value.usage == usage(command)
    assert err.value.usage.startswith(f"/upshift {command}")
    assert err.value.message
    assert err.value.usage in str(err.value)


def test_every_command_has_bad_forms() -> None:
    assert {c for _, c in BAD} == {s.name for s in GRAMMAR if s.args} | {"help", "freezes"}


@pytest.mark.parametrize("text", ["deploy everything", "stat", "/upshift status", "approve-all", "rm -rf /"])
def test_unknown_commands_get_the_synopsis(text: str) -> None:
    with pytest.raises(UnknownCommand) as err:
        parse(text)
    assert err.value.usage == SYNOPSIS
    assert err.value.command is None


def test_unknown_command_suggests_a_close_one() -> None:
    with pytest.raises(UnknownCommand, match="did you mean 'status'"):
        parse("stauts")


@pytest.mark.parametrize(
    "text",
    [
        "x" * (MAX_TEXT + 1),
        "status " + " " * MAX_TEXT,
        f"deny {RUN} " + "w " * MAX_TEXT,
        "status\x00",
        "pause all\x1b[31m",
        f"approve {RUN} ok\ud800",
    ],
    ids=["long", "long-space", "long-reason", "nul", "escape", "surrogate"],
)
def test_over_long_and_control_text_is_refused(text: str) -> None:
    with pytest.raises(CommandError):
        parse(text)


def test_not_text_is_a_command_error() -> None:
    with pytest.raises(CommandError):
        parse(b"status")  # type: ignore[arg-type]


def test_help_lists_every_command_and_scope_form() -> None:
    lines = HELP.splitlines()
    for spec in GRAMMAR:
        assert sum(line.startswith(spec.usage + " ") for line in lines) == 1, spec.name
    for kind in KINDS:
        assert kind in HELP
    for form in ("window:<name>", "wave:<n>", "all", "4h", "1h30m"):
        assert form in HELP
    assert all(s.name in SYNOPSIS for s in GRAMMAR)


def test_minimum_roles() -> None:
    assert set(MIN_ROLE.values()) <= set(ROLES)
    assert {n for n, r in MIN_ROLE.items() if r == "viewer"} == {"help", "status", "plan", "freezes", "audit"}
    assert {n for n, r in MIN_ROLE.items() if r == "approver"} == {"approve", "deny"}
    assert {n for n, r in MIN_ROLE.items() if r == "operator"} == {
        "upgrade",
        "pause",
        "resume",
        "cancel",
        "freeze",
        "unfreeze",
    }
    for text, cmd in GOOD:
        assert min_role(cmd) == MIN_ROLE[type(cmd).name], text


# --- fuzz -----------------------------------------------------------------------------------

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_VALID = [t for t, _ in GOOD if t.strip()]


def _must_be_command_or_error(text: str) -> None:
    try:
        out = parse(text)
    except CommandError as exc:
        assert exc.usage and exc.message
        return
    assert type(out).name in MIN_ROLE


@_FUZZ
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(text: str) -> None:
    _must_be_command_or_error(text)


_TOKEN = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        ["", "all", "kind:", "wave:", "window:", "for", "to", "now", "0m", "=", ":", RUN, "é", "\x00"]
    ),
    st.integers().map(str),
    st.text(alphabet="0123456789dhms:=.-", max_size=20),
)


@_FUZZ
@given(st.sampled_from(_VALID), st.data())
def test_fuzz_valid_commands_with_one_token_mangled(text: str, data: st.DataObject) -> None:
    tokens = text.split()
    i = data.draw(st.integers(0, len(tokens) - 1))
    how = data.draw(st.sampled_from(["replace", "drop", "insert", "append"]))
    token = data.draw(_TOKEN)
    if how == "replace":
        tokens[i] = token
    elif how == "drop":
        del tokens[i]
    elif how == "insert":
        tokens.insert(i, token)
    else:
        tokens[i] = tokens[i] + token
    _must_be_command_or_error(" ".join(tokens))
