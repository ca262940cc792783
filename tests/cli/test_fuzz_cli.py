"""Fuzz the CLI-argument edge: odd values of the options people type — ``plan --release`` and
``--now``, ``events validate`` files, bus URLs — are a usage error (exit 2, one line) or work
(exit 0); never a traceback, never another exit code.

In-process through click's runner (the same ``main`` the console script calls), so a few
hundred examples take seconds; ``tests/cli/test_cli_errors.py`` runs the real process for the
cases whose exit path goes through the interpreter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.bus.url import parse_bus_url
from shared.errors import ConfigError
from shared.ops.cli import cli
from shared.ops.demo import build_demo_fleet

odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789.=@-:Tvr", max_size=80),
    st.sampled_from(["", "=", "cce=", "=v1", "starrocks=3." + "9" * 5000, "cce=v1.29@", "cce=v1@not-a-time"]),
    st.text(min_size=2000, max_size=3000, alphabet="a9"),
).filter(lambda s: "\x00" not in s)


@pytest.fixture(scope="module")
def fleet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "fleet.yaml"
    path.write_text(build_demo_fleet(5, "http://127.0.0.1:9", "p1").fleet_yaml)
    return path


def _ends_cleanly(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    # click's usage errors and our ConfigErrors exit 2 (SystemExit); anything else escaping
    # (result.exception not a SystemExit) is a traceback the operator would see
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output[-500:])
    assert "Traceback" not in result.output


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(release=odd_text)
def test_plan_release_values(fleet_file: Path, release: str) -> None:
    _ends_cleanly(["plan", "--fleet", str(fleet_file), "--release", release, "--json"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(now=odd_text)
def test_plan_now_values(fleet_file: Path, now: str) -> None:
    _ends_cleanly(["plan", "--fleet", str(fleet_file), "--release", "cce=v1.30", "--now", now])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200), odd_text.map(str.encode)))
def test_events_validate_files(tmp_path_factory: pytest.TempPathFactory, body: bytes) -> None:
    path = tmp_path_factory.mktemp("ev") / "e.json"
    path.write_bytes(body)
    result = CliRunner().invoke(cli, ["events", "validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), result.output[-500:]  # validate: 1 = the file is not valid
    assert "Traceback" not in result.output


@settings(max_examples=200, deadline=None)
@given(
    url=st.one_of(
        odd_text,
        st.builds(
            lambda scheme, rest: f"{scheme}://{rest}",
            st.sampled_from(["sqlite", "nats", "http", ""]),
            st.text(alphabet="/:?&=.%a1-lease namespace", max_size=60),
        ),
    )
)
def test_bus_urls_are_parsed_or_refused_naming_the_problem(url: str) -> None:
    try:
        parse_bus_url(url)
    except ConfigError as exc:
        assert str(exc).strip()
