"""Who is who in chat: the fleet file's ``rbac:`` grants, mapping identities to roles.

```yaml
rbac:
  - name: sre-leads
    role: approver
    slack: ["T0SRE/U024BE7LH"]          # team id / user id, as Slack sends them
    mattermost: ["8ifkc4bxw3gq8pbt3xtzbc6qnr"]
  - name: oncall
    role: operator
    slack: ["T0SRE/U0ONCALL1"]
    kinds: [ncloud-kafka, cce]          # limits: only these kinds …
    targets: ["cce-*", "kafka-*"]       # … these targets (globs) …
    windows: [sat-night]                # … and these windows
  - {name: stackstorm, role: operator, tokens: [chatops-bot]}   # a bot's bearer token (auth.tokens)
  - {name: laptop, role: admin, cli: [alice]}                     # `upshift` commands as an OS user
```

Identities are the platforms' immutable ids, never display names. A grant's limits narrow where
its role holds; an identity in several grants holds each grant's role within that grant's limits.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from events.catalog import Kind
from shared.domain.access import Role

__all__ = ["Grant"]


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,62}$")
    role: Role
    #: Slack identities as ``<team id>/<user id>`` (``T0SRE/U024BE7LH``).
    slack: list[str] = Field(
        default=[], json_schema_extra={"items": {"pattern": r"^T[A-Z0-9]+/[UW][A-Z0-9]+$"}}
    )
    #: Mattermost user ids.
    mattermost: list[str] = []
    #: Names of ``auth.tokens`` entries (bots, scripts, the HTTP API).
    tokens: list[str] = []
    #: OS user names running ``upshift`` commands on a host with the bus.
    cli: list[str] = []
    kinds: list[Kind] = []
    #: globs on target names
    targets: list[str] = []
    windows: list[str] = []
