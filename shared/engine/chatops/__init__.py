"""Executing chat commands: each command (already parsed and authorized) → what changed, what to
emit, what to tell the user.

* :mod:`.outcome` — :class:`Outcome` (``ok`` / ``refused`` / ``invalid`` / ``error``, the reply,
  the events), what every executor returns;
* :mod:`.runs` — ``approve``, ``deny``, ``cancel`` (a run or a scope), ``upgrade``;
* :mod:`.control` — ``pause``, ``resume``, ``freeze``, ``unfreeze``;
* :mod:`.views` — ``help``, ``status``, ``plan``, ``freezes``, ``audit`` (read only);
* :mod:`.execute` — the dispatch, and the targets a command touches (for RBAC).
* :mod:`.submit` — the way in for a command typed outside chat (HTTP API, dashboard): its text
  checked, published as ``chat.command``, its audit entry awaited.

Every executor is a replay (DESIGN §6.7): what it writes carries the command event's id, so a
redelivered command finds its own write and returns the same outcome and the same events.
"""

__all__: list[str] = []
