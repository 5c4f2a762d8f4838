"""The process environment, read once at the entry point: nothing else reads `os.environ`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_SECRET = "***"
_ENV_NAMES = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_api_url": "SLACK_API_URL",
    "database_url": "DATABASE_URL",
    "config_path": "UPGRADEBOT_CONFIG",
    "dma_username": "DMA_USERNAME",
    "dma_password": "DMA_PASSWORD",
}
_SECRETS = frozenset({"slack_bot_token", "slack_signing_secret", "slack_app_token", "dma_password"})
_URL_PASSWORD_RE = re.compile(r"(://[^/:@]*:)[^/]*(@)")


@dataclass(frozen=True, repr=False)
class Environment:
    """What the process environment says, read once at the entry point."""

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///upgradebot.db"
    config_path: str = "upgradebot.yml"
    dma_username: str | None = None
    dma_password: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Environment:
        """Read the variables; an empty or blank variable counts as unset."""
        values = {field: environ.get(var, "").strip() for field, var in _ENV_NAMES.items()}
        return cls(**{field: value for field, value in values.items() if value})

    @property
    def socket_mode(self) -> bool:
        """Say whether to connect by Socket Mode (an app-level token is set)."""
        return self.slack_app_token is not None

    def __repr__(self) -> str:
        """Show the settings with tokens, passwords and a database password masked."""
        shown = []
        for field in _ENV_NAMES:
            value = getattr(self, field)
            if value is not None and field in _SECRETS:
                value = _SECRET
            elif field == "database_url":
                value = _URL_PASSWORD_RE.sub(rf"\g<1>{_SECRET}\g<2>", value)
            shown.append(f"{field}={value!r}")
        return f"Environment({', '.join(shown)})"
