"""serverless.yml: the shipped one is valid; a broken one names the function and field."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from shared.errors import ConfigError
from shared.runtime.manifest import DEFAULT_MANIFEST, load_manifest


def test_shipped_manifest_is_valid_and_resolves():
    m = load_manifest(DEFAULT_MANIFEST)
    assert "echo" in m.functions
    assert m.functions["echo"].events[0].event.type == "dev.upshift.echo"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            "service: s\nfunctions:\n  echo:\n    handler: functions.echo.echo\n    events:\n      - event: {type: dev.upshift.nope}\n",
            "functions.echo.events[0].event.type",
        ),
        (
            "service: s\nfunctions:\n  echo:\n    handler: functions.missing.echo\n    events:\n      - event: {type: dev.upshift.echo}\n",
            "functions.echo.handler",
        ),
        (
            "service: s\nfunctions:\n  echo:\n    events:\n      - event: {type: dev.upshift.echo}\n",
            "functions.echo.handler",
        ),
        (
            "service: s\nfunctions:\n  echo:\n    handler: functions.echo.echo\n    events:\n      - schedule: every minute\n",
            "functions.echo.events[0]",
        ),
        (
            "service: s\nfunctions:\n  echo:\n    handler: functions.echo.echo\n    events:\n      - {http: {path: /x}, schedule: rate(1 minute)}\n",
            "functions.echo.events[0]",
        ),
        (
            "service: s\nfunctions:\n  Echo:\n    handler: functions.echo.echo\n    events:\n      - event: {type: dev.upshift.echo}\n",
            "functions",
        ),
    ],
)
def test_broken_manifest_names_the_field(tmp_path, body, where):
    p = tmp_path / "serverless.yml"
    p.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_manifest(p)
    assert where in str(err.value)
    assert str(p) in str(err.value)


def test_a_manifest_that_is_not_utf8_is_a_config_error_naming_the_line(tmp_path):
    p = tmp_path / "serverless.yml"
    p.write_bytes(b"service: s\n# caf\xe9\nfunctions: {}\n")
    with pytest.raises(ConfigError) as err:
        load_manifest(p)
    assert err.value.where == f"{p}:2" and "not UTF-8" in str(err.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    p = tmp_path / "serverless.yml"
    p.write_text("service: s\nfunctions:\n  echo: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_manifest(p)
    assert f"{p}:" in str(err.value)


def test_cli_exits_2_without_traceback_on_a_bad_manifest(tmp_path):
    p = tmp_path / "serverless.yml"
    p.write_text(
        textwrap.dedent("""
        service: s
        functions:
          echo:
            handler: functions.echo.echo
            events:
              - event: {type: dev.upshift.nope}
    """)
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.ops.cli",
            "worker",
            "--bus",
            f"sqlite:///{tmp_path}/b.db",
            "--manifest",
            str(p),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "functions.echo.events[0].event.type" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "url",
    [
        "redis://x",
        "sqlite://",
        "nats://:4222",
        "nats://h:notaport",
        "sqlite:///x.db?lease=-1",
        "sqlite:///x.db?bogus=1",
    ],
)
def test_cli_rejects_a_bad_bus_url(url):
    r = subprocess.run(
        [sys.executable, "-m", "shared.ops.cli", "worker", "--bus", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "bus url" in r.stderr and "Traceback" not in r.stderr


_UNDECORATED = (
    "service: s\nfunctions:\n  echo:\n    handler: tests.helpers.echo\n"
    "    events:\n      - event: {type: dev.upshift.echo}\n"
)


def test_every_runtime_refuses_a_handler_that_is_not_an_upshift_function(tmp_path, monkeypatch):
    """The bus host and the functions-framework targets resolve handlers the same way."""
    import shared.runtime.framework as targets
    from shared.bus import open_bus
    from shared.runtime.host import Runtime
    from shared.store import open_store

    p = tmp_path / "serverless.yml"
    p.write_text(_UNDECORATED)
    url = f"sqlite:///{tmp_path}/b.db"
    with pytest.raises(ConfigError, match=r"functions\.echo\.handler.*@upshift_function"):
        Runtime(load_manifest(p), open_bus(url), open_store(url))
    monkeypatch.setenv("UPSHIFT_MANIFEST", str(p))
    monkeypatch.delitem(targets.__dict__, "echo", raising=False)
    with pytest.raises(ConfigError, match=r"functions\.echo\.handler.*@upshift_function"):
        _ = targets.echo
