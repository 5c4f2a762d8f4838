"""The process environment, read once at the entry point into one typed, frozen object.

`Environment.from_env(os.environ)` is the only way the variables are read: nothing else in the
project reads `os.environ`, and an `Environment()` built in code reads nothing at all. Tokens and
passwords are `SecretStr`: whoever hands one to a library calls `get_secret_value()` there, and
neither repr, str nor a log line ever shows one (nor the password inside DATABASE_URL).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

_MASK = "***"
_URL_PASSWORD_RE = re.compile(r"(://[^/:@]*:)[^/]*(@)")


class Environment(BaseSettings):
    """What the process environment says, read once at the entry point."""

    # Each field is read from the variable its alias names, spelt exactly so.
    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    database_url: str = Field("sqlite:///upgradebot.db", validation_alias="DATABASE_URL")
    config_path: str = Field("upgradebot.yml", validation_alias="UPGRADEBOT_CONFIG")
    dma_username: str | None = Field(None, validation_alias="DMA_USERNAME")
    dma_password: SecretStr | None = Field(None, validation_alias="DMA_PASSWORD")
    log_format: str | None = Field(None, validation_alias="LOG_FORMAT")  # text | json

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Take values from the constructor only: the variables come in through `from_env`."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Environment:
        """Read the variables; an empty or blank variable counts as unset."""
        return cls(**_Variables(cls, environ)())

    def secrets(self) -> tuple[str, ...]:
        """Every secret value set, for masking in logs."""
        values = (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token,
                  self.dma_password)
        return tuple(v.get_secret_value() for v in values if v is not None)

    @property
    def socket_mode(self) -> bool:
        """Say whether to connect by Socket Mode (an app-level token is set)."""
        return self.slack_app_token is not None

    def __repr_args__(self) -> Iterator[tuple[str, object]]:
        """Show the settings with tokens, passwords and a database password masked."""
        for field in type(self).model_fields:
            value = getattr(self, field)
            if isinstance(value, SecretStr):
                value = _MASK
            elif field == "database_url":
                value = _URL_PASSWORD_RE.sub(rf"\g<1>{_MASK}\g<2>", value)
            yield field, value


class _Variables(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Blank counts as unset, so a default applies; values are read without their padding.
        return {name: value.strip() for name, value in self._environ.items() if value.strip()}
