"""Issue 10 item 10, on the real process: a client that hangs up mid-body is not an error.

Before the fix ``upshift serve`` logged ``unhandled error`` at level error with a
``ConnectionResetError`` traceback for each such request (reproduced on 52f619f with exactly
this test's requests). ``tests/shared/test_edges_http.py`` checks the in-process server; this
one runs the command people run, where the log is what an on-call engineer reads.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from simulator.natsd import free_port
from tests.helpers import eventually, start_serve, wait_healthy


async def _hang_up_mid_body(port: int, path: str) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n".encode()
        + b'{"product": "cce", "ver'
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await writer.wait_closed()


async def test_a_client_gone_mid_body_is_logged_as_info_not_an_error(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = start_serve(f"sqlite:///{tmp_path}/u.db", port, stdout=out, stderr=subprocess.STDOUT)
        try:
            await wait_healthy(port, proc)
            for path in ("/hooks/release", "/hooks/release", "/events"):
                await _hang_up_mid_body(port, path)
            await wait_healthy(port, proc)  # still answering
            # the server has handled both hang-ups on the hook (whose body it reads before any
            # check) before it is stopped: otherwise "no error logged" could hold vacuously
            await eventually(lambda: log.read_text().count("client went away") >= 2, timeout=30)
        finally:
            proc.terminate()
            assert proc.wait(timeout=30) == 0
    text = log.read_text()
    assert "Traceback" not in text, text
    lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    assert lines, text  # it logged JSON (the warnings at start at least)
    assert not [x for x in lines if x.get("level") in ("error", "critical")], lines
