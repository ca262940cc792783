"""The role model (shared/domain/access.py) and the fleet file's ``auth:`` block that uses it."""

from __future__ import annotations

import re

import pytest

from events.catalog import CATALOG, T
from shared.domain.access import (
    INTERNAL,
    PUBLISHABLE,
    ROLES,
    Principal,
    at_least,
    authorize_publish,
    check_publish_list,
    event_type,
    may_announce_release,
)
from shared.domain.fleet import Token, parse_fleet
from shared.errors import ConfigError

BASE = """\
clouds:
  huawei: {region: ap-southeast-1, project_id: p1}
targets:
  - {name: cce-1, kind: cce, cluster_id: c-1}
"""


def test_roles_are_ordered_viewer_operator_approver_admin():
    assert ROLES == ("viewer", "operator", "approver", "admin")
    assert at_least("admin", "viewer") and at_least("operator", "operator")
    assert not at_least("operator", "approver") and not at_least("viewer", "operator")


def test_every_catalog_type_is_either_publishable_or_internal():
    assert set(PUBLISHABLE) <= set(CATALOG)
    assert INTERNAL == set(CATALOG) - set(PUBLISHABLE)
    assert set(PUBLISHABLE) == {T.VERSION_RELEASED, T.UPGRADE_REQUESTED, T.CHAT_COMMAND, T.ECHO}


@pytest.mark.parametrize(
    "type_",
    [t for t in CATALOG if re.search(r"\.(stage\.|job\.poll|wave\.ready|clock\.tick|event\.deadlettered)", t)]
    + [T.UPGRADE_PLANNED, T.WINDOW_OPENED, T.WINDOW_CLOSING, T.UPGRADE_SUCCEEDED, T.UPGRADE_FAILED],
)
def test_pipeline_types_are_internal(type_):
    assert type_ in INTERNAL
    admin = Principal("root", "admin", frozenset(CATALOG))  # even listed, even admin
    denied = authorize_publish(admin, type_)
    assert denied is not None and "internal" in denied.message


def test_stage_types_are_all_found():
    # the parametrisation above must not be empty by a typo in its pattern
    assert {T.STAGE_REQUESTED, T.STAGE_STARTED, T.STAGE_SUCCEEDED, T.STAGE_FAILED, T.JOB_POLL} <= INTERNAL
    assert {T.WAVE_READY, T.CLOCK_TICK, T.EVENT_DEAD_LETTERED} <= INTERNAL


def test_authorize_publish_follows_the_allow_list_and_the_role():
    bot = Principal("bot", "operator", frozenset({T.VERSION_RELEASED}))
    assert authorize_publish(bot, T.VERSION_RELEASED) is None
    denied = authorize_publish(bot, T.ECHO)
    assert denied is not None and "'bot'" in denied.message and denied.field == "type"
    # an allow-list above the role (the loader refuses it; a hand-built one is still denied)
    assert authorize_publish(
        Principal("x", "operator", frozenset({T.UPGRADE_REQUESTED})), T.UPGRADE_REQUESTED
    )
    assert (
        authorize_publish(Principal("x", "approver", frozenset({T.UPGRADE_REQUESTED})), T.UPGRADE_REQUESTED)
        is None
    )
    assert authorize_publish(Principal("v", "viewer"), T.ECHO) is not None
    assert may_announce_release(bot) is None
    assert may_announce_release(Principal("e", "admin", frozenset({T.ECHO}))) is not None


def test_check_publish_list_takes_short_names_and_refuses_what_the_role_may_not():
    assert check_publish_list("operator", ["version.released", T.ECHO, "echo"]) == [
        T.VERSION_RELEASED,
        T.ECHO,
    ]
    assert event_type("chat.command") == T.CHAT_COMMAND
    with pytest.raises(ValueError, match="unknown event type 'nope'"):
        check_publish_list("admin", ["nope"])
    with pytest.raises(ValueError, match="internal event type"):
        check_publish_list("admin", ["stage.requested"])
    with pytest.raises(ValueError, match="needs approver"):
        check_publish_list("operator", ["upgrade.requested"])
    with pytest.raises(ValueError, match="needs operator"):
        check_publish_list("viewer", ["echo"])


# -- the fleet file's auth: block ---------------------------------------------------------------


def test_auth_block_loads_with_full_types():
    fleet = parse_fleet(
        BASE
        + "auth:\n  tokens:\n"
        + "    - {name: bot, token_env: BOT_TOKEN, role: operator, publish: [version.released, echo]}\n"
        + "    - {name: board, token_env: BOARD_TOKEN, role: viewer}\n"
    )
    bot, board = fleet.auth.tokens
    assert bot.publish == [T.VERSION_RELEASED, T.ECHO]
    assert board.publish == []
    assert parse_fleet(BASE).auth.tokens == []
    assert parse_fleet(BASE).hooks.allow_unauthenticated is False


def test_the_token_docstring_example_loads():
    example = Token.__doc__.split("```yaml\n")[1].split("```")[0]
    example = "\n".join(line[4:] for line in example.splitlines())
    fleet = parse_fleet(BASE + example)
    assert [t.role for t in fleet.auth.tokens] == ["operator", "approver", "viewer"]


@pytest.mark.parametrize(
    ("tokens", "line", "field", "message"),
    [
        (
            "    - {name: a, token_env: A_TOKEN, role: boss}\n",
            7,
            "auth.tokens[0].role",
            "'viewer', 'operator'",
        ),
        (
            "    - {name: a, token_env: A_TOKEN, role: admin}\n    - {name: b, token_env: B, role: operator, publish: [nope]}\n",
            8,
            "auth.tokens[1].publish",
            "unknown event type 'nope'",
        ),
        (
            "    - {name: a, token_env: A_TOKEN, role: admin, publish: [stage.requested]}\n",
            7,
            "auth.tokens[0].publish",
            "'stage.requested' is an internal event type",
        ),
        (
            "    - {name: a, token_env: A_TOKEN, role: admin, publish: [dev.upshift.clock.tick]}\n",
            7,
            "auth.tokens[0].publish",
            "internal event type",
        ),
        (
            "    - {name: a, token_env: A_TOKEN, role: operator, publish: [upgrade.requested]}\n",
            7,
            "auth.tokens[0].publish",
            "role 'operator' may not publish 'upgrade.requested'",
        ),
        ("    - {name: a, token_env: 'not a var', role: admin}\n", 7, "auth.tokens[0].token_env", "pattern"),
        ("    - {name: a, token: s3cr3t, role: admin}\n", 7, "auth.tokens[0].token_env", "required"),
        (
            "    - {name: a, token_env: A, role: admin}\n    - {name: a, token_env: B, role: admin}\n",
            5,
            "auth",
            "duplicate token name 'a'",
        ),
        (
            "    - {name: a, token_env: A, role: admin}\n    - {name: b, token_env: A, role: admin}\n",
            5,
            "auth",
            "'a' and 'b' both read A",
        ),
    ],
)
def test_a_bad_auth_block_is_refused_naming_file_line_and_field(tokens, line, field, message):
    with pytest.raises(ConfigError) as err:
        parse_fleet(BASE + "auth:\n  tokens:\n" + tokens, "fleet.yaml")
    text = str(err.value)
    assert text.startswith(f"fleet.yaml:{line}: {field}"), text
    assert message in text, text


def test_an_inline_token_value_is_refused_not_read():
    # a value pasted where the env var's *name* goes is refused (not a valid variable name)
    with pytest.raises(ConfigError, match="token_env"):
        parse_fleet(BASE + "auth: {tokens: [{name: a, token_env: 'ghp_abc-123/xyz', role: admin}]}\n")
