"""One ``aiohttp.ClientSession`` per event loop, shared by every vendor client.

A session is bound to the loop it was created on, and a process may run several loops over its
life (tests, the CLI), so sessions are kept per loop. ``get_session`` creates the running loop's
session on first use (and again after it was closed); ``close_sessions`` closes it on shutdown.
"""

from __future__ import annotations

import asyncio
import weakref

import aiohttp

__all__ = ["close_sessions", "get_session"]

# Weak keys let a dead loop take its entry along.
_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def get_session() -> aiohttp.ClientSession:
    """The process's shared session for the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        # Pool size: the per-endpoint semaphores do the real limiting; this only caps the total.
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512), raise_for_status=False)
        _sessions[loop] = session
    return session


async def close_sessions() -> None:
    """Close the running loop's shared session (call on shutdown)."""
    loop = asyncio.get_running_loop()
    session = _sessions.pop(loop, None)
    if session is not None and not session.closed:
        await session.close()
