"""Secrets never reach a log line; handler lines carry the event's correlation."""

from __future__ import annotations

import io
import json

from shared.log import bind_event, configure, get_logger, is_secret_key
from tests.helpers import stage_requested


def _lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_secret_looking_keys_are_redacted_at_any_depth():
    buf = io.StringIO()
    configure(json=True, stream=buf)
    get_logger().info(
        "calling vendor",
        access_key="AKIA-SHOULD-NOT-LEAK",
        hw_sk_secret="sk-should-not-leak",
        password="hunter2",
        token="tok-should-not-leak",
        headers={
            "Authorization": "SDK-HMAC-SHA256 Access=AK, Signature=abc",
            "X-Auth-Token": "t0k",
            "Accept": "json",
        },
        nested=[{"client_secret": "s3"}],
        region="ap-southeast-1",
    )
    text = buf.getvalue()
    for leaked in (
        "AKIA-SHOULD-NOT-LEAK",
        "sk-should-not-leak",
        "hunter2",
        "tok-should-not-leak",
        "Signature=abc",
        "t0k",
        's3"',
    ):
        assert leaked not in text
    line = _lines(buf)[0]
    assert line["region"] == "ap-southeast-1"
    assert line["headers"]["Accept"] == "json"
    assert line["access_key"] == "***"


def test_key_patterns():
    for k in (
        "access_key",
        "api_key",
        "ak",
        "sk",
        "client_secret",
        "password",
        "passwd",
        "token",
        "X-Auth-Token",
        "Authorization",
        "x-ncp-apigw-signature-v2",
    ):
        assert is_secret_key(k), k
    for k in ("keyboard", "monkey_business", "target", "kind", "key_count"):
        assert not is_secret_key(k), k


def test_lines_inside_a_handler_carry_the_event_correlation():
    buf = io.StringIO()
    configure(json=True, stream=buf)
    e = stage_requested(runid="run42", target="cce-a", stage="upgrade")
    with bind_event(e):
        get_logger().info("inside")
    get_logger().info("outside")
    inside, outside = _lines(buf)
    assert inside["event_id"] == e.id and inside["event_type"] == e.type
    assert (inside["runid"], inside["target"], inside["stage"]) == ("run42", "cce-a", "upgrade")
    assert "event_id" not in outside


def test_tty_gets_readable_lines_not_json():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    buf = Tty()
    configure(stream=buf)
    get_logger().info("hello", token="zzz")
    out = buf.getvalue()
    assert "hello" in out and not out.lstrip().startswith("{") and "zzz" not in out
