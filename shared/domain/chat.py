"""The fleet file's ``chat:`` block: the Slack app and Mattermost slash command Upshift answers.

```yaml
chat:
  slack:
    signing_secret_env: SLACK_SIGNING_SECRET   # the app's Signing Secret (Basic Information)
    teams: [T0SRE]                              # workspaces accepted (empty: any that signs)
  mattermost:
    token_env: MATTERMOST_COMMAND_TOKEN         # the slash command's token
    response_hosts: [chat.example.internal]     # where its response_url may point
  contact: "#platform-oncall"                   # who an unknown user is told to ask
```

Secrets are never here, only the names of the environment variables holding them.
``response_hosts``: the hosts a command's ``response_url`` may name — the result of a command is
POSTed there, so an event carrying another host (a bot's, a forged one) gets no reply rather
than making Upshift POST anywhere it is told.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Chat", "MattermostChat", "SlackChat", "escape_mrkdwn"]

_ENV = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_HOST = r"^[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackChat(_Strict):
    """A Slack app: slash command ``/upshift`` and interactivity pointing at ``upshift serve``."""

    signing_secret_env: str = Field(pattern=_ENV)
    #: Slack workspace (team) ids whose requests are accepted; empty: any correctly signed.
    teams: list[str] = []
    #: Hosts a ``response_url`` may name (Slack's own by default).
    response_hosts: list[str] = Field(
        default=["hooks.slack.com"], json_schema_extra={"items": {"pattern": _HOST}}
    )


class MattermostChat(_Strict):
    """A Mattermost slash command (token auth) with Slack-compatible replies."""

    token_env: str = Field(pattern=_ENV)
    #: Hosts a ``response_url`` may name: the Mattermost server's.
    response_hosts: list[str] = []


class Chat(_Strict):
    slack: SlackChat | None = None
    mattermost: MattermostChat | None = None
    #: Who a user Upshift does not know is told to ask for access.
    contact: str = Field(default="an Upshift admin", max_length=200)


def escape_mrkdwn(text: str) -> str:
    """Text safe inside a Slack (or Mattermost) message: Slack's three control characters escaped,
    so a vendor message or a user's reason holding ``<`` never becomes a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
