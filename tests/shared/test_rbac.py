"""RBAC: identities from the trusted edge, roles within grant limits, the role × command × scope
matrix, and the fleet loader refusing what the rbac: block gets wrong."""

from __future__ import annotations

import pytest

from events.catalog import ChatCommand
from shared.domain import commands
from shared.domain.access import ROLES, Role, at_least
from shared.domain.commands import GRAMMAR, MIN_ROLE
from shared.domain.fleet import Fleet, Target, parse_fleet
from shared.domain.rbac import Identity, approver_groups, authorize, identity_of, role_on
from shared.domain.scopes import targets_in
from shared.errors import ConfigError

BASE = """\
clouds: {huawei: {region: ap-southeast-1, project_id: p1}, ncloud: {region: KR}}
windows:
  sat-night: {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h, timezone: Asia/Seoul}
  sun-night: {rrule: "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", duration: 4h, timezone: Asia/Seoul}
targets:
  - {name: cce-a, kind: cce, cluster_id: c0, window: sat-night, wave: 0}
  - {name: cce-b, kind: cce, cluster_id: c1, window: sat-night, wave: 1}
  - {name: kafka-a, kind: ncloud-kafka, cluster: 3432149, window: sun-night, wave: 0}
  - {name: cce-c, kind: cce, cluster_id: c2, window: sun-night, wave: 2}
auth:
  tokens:
    - {name: chatops-bot, token_env: CHATOPS_TOKEN, role: approver, publish: [chat.command]}
    - {name: lone-bot, token_env: LONE_TOKEN, role: operator, publish: [chat.command]}
chat: {contact: "#platform-oncall"}
"""

#: The limits of the matrix's grant: kind cce in window sat-night (cce-a and cce-b only).
LIMITS = "kinds: [cce], windows: [sat-night]"


def _within(t: Target) -> bool:
    return t.kind == "cce" and t.window == "sat-night"


def fleet_with(rbac: str, extra: str = "") -> Fleet:
    return parse_fleet(BASE + "rbac:\n" + rbac + extra)


def slack(user: str, team: str = "T0SRE") -> Identity:
    found = identity_of(ChatCommand(platform="slack", team=team, user=user, text="help"), "slack")
    assert found is not None
    return found


# --- identity -----------------------------------------------------------------------------------


def test_identity_comes_from_via_never_from_the_claimed_platform():
    data = ChatCommand(platform="slack", team="T0SRE", user="U024BE7LH", user_name="alice", text="help")
    assert identity_of(data, "slack") == Identity("slack:T0SRE/U024BE7LH", "slack", "alice")
    # a bot posting Slack-shaped data through the ingress is the bot, acting for the user it names
    bot = identity_of(data, "token:chatops-bot")
    assert bot == Identity("token:chatops-bot", "token", "alice", on_behalf_of="U024BE7LH")
    assert identity_of(data, "mattermost") == Identity("mattermost:U024BE7LH", "mattermost", "alice")
    assert identity_of(data, "cli") == Identity("cli:U024BE7LH", "cli", "alice")


@pytest.mark.parametrize("via", [None, "", "api", "token:", "Slack", "bot", "slack "])
def test_no_trusted_via_is_no_identity(via):
    data = ChatCommand(platform="slack", team="T0SRE", user="U024BE7LH", text="help")
    assert identity_of(data, via) is None


def test_slack_without_a_team_is_no_identity():
    assert identity_of(ChatCommand(platform="slack", user="U024BE7LH", text="help"), "slack") is None


# --- the matrix ---------------------------------------------------------------------------------

#: Scopes: in limits (cce-a, window:sat-night, wave:1), out (cce-c by window, kafka-a by kind,
#: kind:cce and all because they take cce-c/kafka-a too), matching nothing (wave:7).
SCOPES = [
    "cce-a",
    "cce-c",
    "kafka-a",
    "kind:cce",
    "kind:ncloud-kafka",
    "window:sat-night",
    "window:sun-night",
    "wave:0",
    "wave:1",
    "wave:7",
    "all",
]
TARGET_SCOPES = ["cce-a", "cce-c", "kafka-a"]
#: a run's target, for approve/deny (the caller resolves a run to its target)
RUNS = {"r0000000000000a1": "cce-a", "r0000000000000b2": "kafka-a"}

#: How each command's text is written for a scope (None: the command takes none) and what it
#: touches: "scope" (every target of the scope), "target" (the one target), "run", or nothing.
FORMS: dict[str, tuple[str, str | None]] = {
    "help": ("help", None),
    "status": ("status {}", "target"),
    "plan": ("plan cce=v1.29.3-r0", None),
    "upgrade": ("upgrade {} to v1.29.3-r0", "target"),
    "approve": ("approve {} looks good", "run"),
    "deny": ("deny {} not tonight", "run"),
    "pause": ("pause {}", "scope"),
    "resume": ("resume {}", "scope"),
    "cancel": ("cancel {}", "scope"),
    "freeze": ("freeze {} for 4h incident", "scope"),
    "unfreeze": ("unfreeze {}", "scope"),
    "freezes": ("freezes", None),
    "audit": ("audit", None),
}


def _cases() -> list[tuple[str, str]]:
    out = []
    for name, (form, touches) in FORMS.items():
        args = {"scope": SCOPES, "target": TARGET_SCOPES, "run": list(RUNS)}.get(touches or "", [""])
        out += [(name, form.format(a)) for a in args]
    return out


def test_the_matrix_covers_every_command_of_the_grammar():
    assert set(FORMS) == {s.name for s in GRAMMAR} == set(MIN_ROLE)


def _touched(fleet: Fleet, command: commands.Command) -> list[Target] | None:
    match command:
        case (
            commands.Pause(scope)
            | commands.Resume(scope)
            | commands.Freeze(scope, _, _)
            | commands.Unfreeze(scope)
        ):
            return targets_in(scope, fleet)
        case commands.Cancel(commands.Run()):
            raise AssertionError("the matrix cancels scopes")
        case commands.Cancel(scope):
            return targets_in(scope, fleet)  # type: ignore[arg-type]
        case commands.Status(commands.TargetScope(name)) | commands.Upgrade(name, _, _):
            return [fleet.target(name)]
        case commands.Approve(run, _) | commands.Deny(run, _):
            return [fleet.target(RUNS[run.id])]
    return None


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "text"), _cases())
def test_rbac_matrix(role: Role, name: str, text: str):
    fleet = fleet_with(f"  - {{name: limited, role: {role}, slack: [T0SRE/U1], {LIMITS}}}\n")
    command = commands.parse(text)
    assert command.name == name
    targets = _touched(fleet, command)
    denied = authorize(fleet, slack("U1"), MIN_ROLE[name], targets)
    expected = at_least(role, MIN_ROLE[name]) and (targets is None or all(_within(t) for t in targets))
    assert (denied is None) == expected, (role, text, denied)
    if denied is not None:
        assert MIN_ROLE[name] in denied.message and "#platform-oncall" in denied.message
        out = next((t for t in targets or [] if not _within(t)), None)
        if out is not None and at_least(role, MIN_ROLE[name]):
            assert out.name in denied.message, "names the first target out of reach"


def test_an_operator_limited_to_cce_may_pause_kind_cce_but_not_all():
    fleet = fleet_with("  - {name: oncall, role: operator, slack: [T0SRE/U1], kinds: [cce]}\n")
    me = slack("U1")
    assert authorize(fleet, me, "operator", targets_in(commands.parse_scope("kind:cce"), fleet)) is None
    denied = authorize(fleet, me, "operator", targets_in(commands.parse_scope("all"), fleet))
    assert denied is not None
    assert "needs operator or above on kafka-a (holds no role there)" in denied.message


def test_several_grants_the_highest_covering_role_counts_per_target():
    fleet = fleet_with(
        "  - {name: everyone, role: viewer, slack: [T0SRE/U1]}\n"
        "  - {name: cce-ops, role: operator, slack: [T0SRE/U1], targets: ['cce-*']}\n"
        "  - {name: canary-approvers, role: approver, slack: [T0SRE/U1], targets: [cce-a]}\n"
    )
    me = slack("U1")
    roles = {t.name: role_on(fleet, me, t) for t in fleet.targets}
    assert roles == {"cce-a": "approver", "cce-b": "operator", "kafka-a": "viewer", "cce-c": "operator"}
    assert authorize(fleet, me, "approver", [fleet.target("cce-a")]) is None
    denied = authorize(fleet, me, "approver", [fleet.target("cce-a"), fleet.target("cce-b")])
    assert denied is not None and "on cce-b (is operator there)" in denied.message
    # touching no target: the best role of any grant
    assert authorize(fleet, me, "approver", None) is None
    assert authorize(fleet, me, "admin", None) is not None
    assert approver_groups(fleet, me) == {"everyone", "cce-ops", "canary-approvers"}
    assert approver_groups(fleet, slack("U2")) == set()


def test_unknown_users_are_told_who_they_are_and_whom_to_ask():
    fleet = fleet_with("  - {name: leads, role: admin, slack: [T0SRE/U1]}\n")
    stranger = identity_of(
        ChatCommand(platform="slack", team="T0SRE", user="U0STRANGE", user_name="mallory", text="help"),
        "slack",
    )
    assert stranger is not None
    denied = authorize(fleet, stranger, "viewer", None)
    assert denied is not None and denied.field == "user"
    assert "slack user U0STRANGE (mallory) of team T0SRE" in denied.message
    assert "ask #platform-oncall" in denied.message
    # the same user id in another workspace is another person
    assert authorize(fleet, slack("U1", team="T0OTHER"), "viewer", None) is not None
    assert authorize(fleet, slack("U1"), "viewer", None) is None


def test_mattermost_and_cli_identities_match_their_own_lists_only():
    fleet = fleet_with(
        "  - {name: mm, role: operator, mattermost: [8ifkc4bxw3gq8pbt3xtzbc6qnr]}\n"
        "  - {name: laptop, role: admin, cli: [alice]}\n"
    )
    mm = identity_of(
        ChatCommand(platform="mattermost", user="8ifkc4bxw3gq8pbt3xtzbc6qnr", text="x"), "mattermost"
    )
    alice = identity_of(ChatCommand(platform="cli", user="alice", text="x"), "cli")
    assert mm is not None and alice is not None
    assert (
        authorize(fleet, mm, "operator", None) is None and authorize(fleet, mm, "approver", None) is not None
    )
    assert authorize(fleet, alice, "admin", fleet.targets) is None
    # "alice" as a Mattermost id is not the CLI user alice
    fake = identity_of(ChatCommand(platform="mattermost", user="alice", text="x"), "mattermost")
    assert fake is not None and authorize(fleet, fake, "viewer", None) is not None


def test_a_token_in_no_grant_holds_its_own_auth_role_unlimited():
    fleet = fleet_with("  - {name: bots, role: viewer, tokens: [chatops-bot]}\n")
    lone = Identity("token:lone-bot", "token")
    assert authorize(fleet, lone, "operator", fleet.targets) is None
    assert authorize(fleet, lone, "approver", None) is not None
    assert approver_groups(fleet, lone) == set(), "the fallback is no grant approvers may name"
    # a token a grant lists holds the grant's role, not its auth role (approver)
    listed = Identity("token:chatops-bot", "token")
    denied = authorize(fleet, listed, "operator", None)
    assert denied is not None and "token 'chatops-bot' is viewer" in denied.message
    unknown = authorize(fleet, Identity("token:nobody", "token"), "viewer", None)
    assert unknown is not None and unknown.field == "user"


def test_an_empty_scope_needs_the_role_only():
    fleet = fleet_with(f"  - {{name: limited, role: operator, slack: [T0SRE/U1], {LIMITS}}}\n")
    assert authorize(fleet, slack("U1"), "operator", []) is None
    assert authorize(fleet, slack("U1"), "approver", []) is not None


# --- the fleet loader ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rbac", "extra", "where", "message"),
    [
        (
            "  - {name: a, role: viewer}\n  - {name: a, role: admin}\n",
            "",
            "rbac[1].name",
            "duplicate grant name 'a' (also rbac[0])",
        ),
        ("  - {name: a, role: viewer, tokens: [ghost]}\n", "", "rbac[0].tokens[0]", "unknown token 'ghost'"),
        ("  - {name: a, role: viewer, slack: [U024BE7LH]}\n", "", "rbac[0].slack", "not a Slack identity"),
        (
            "  - {name: a, role: viewer, windows: [never]}\n",
            "",
            "rbac[0].windows[0]",
            "unknown window 'never' (windows: sat-night, sun-night)",
        ),
        ("  - {name: a, role: owner}\n", "", "rbac[0].role", "Input should be"),
        (
            "  - {name: leads, role: approver}\n",
            "policies:\n  - {match: {kind: cce}, approval: {approvers: [leads, sre]}}\n",
            "policies[0].approval.approvers[1]",
            "unknown rbac grant 'sre' (grants: leads)",
        ),
        (
            "  - {name: leads, role: approver}\n",
            "waves:\n  approval:\n    0: {approvers: [nobody]}\n",
            "waves.approval.0.approvers[0]",
            "unknown rbac grant 'nobody'",
        ),
    ],
)
def test_the_fleet_refuses_a_bad_rbac_block_naming_line_and_field(rbac, extra, where, message):
    text = BASE + "rbac:\n" + rbac + extra
    with pytest.raises(ConfigError) as info:
        parse_fleet(text, "fleet.yaml")
    err = info.value
    assert f"{where}:" in err.message and message in err.message, err
    line = int(err.where.rpartition(":")[2])
    assert line > BASE.count("\n"), "placed on the line that makes it, not the root"


def test_a_good_rbac_block_loads():
    fleet = fleet_with(
        "  - {name: leads, role: approver, slack: [T0SRE/U1, T0SRE/W2], tokens: [chatops-bot]}\n",
        "waves:\n  approval:\n    0: {approvers: [leads]}\n",
    )
    assert [g.name for g in fleet.rbac] == ["leads"]
