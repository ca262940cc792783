"""What executing a command gives: the outcome code, the reply, the events to emit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from shared.bus.base import Emitted

__all__ = ["Code", "Outcome", "invalid", "ok", "refused"]

#: ``refused``: the identity may not (RBAC, self-approval, not an approver); ``invalid``: the
#: command does not apply (unknown run, expired request, bad text); ``error``: Upshift failed.
Code = Literal["ok", "refused", "invalid", "error"]


@dataclass(frozen=True)
class Outcome:
    code: Code
    reply: str
    events: list[Emitted] = field(default_factory=list)
    #: the run the command concerned, when one (for the audit trail)
    run: str | None = None


def ok(reply: str, events: Sequence[Emitted] = (), run: str | None = None) -> Outcome:
    return Outcome("ok", reply, list(events), run)


def refused(reply: str, run: str | None = None) -> Outcome:
    return Outcome("refused", reply, [], run)


def invalid(reply: str, run: str | None = None) -> Outcome:
    return Outcome("invalid", reply, [], run)
