"""`Environment(...)` as pydantic really defines it, for mypy.

Without pydantic's mypy plugin, mypy reads every `Field(None, validation_alias=...)` as a
required argument (it only sees a `default=` keyword) and does not know that pydantic turns a
`str` into a `SecretStr`. `make_environment` is the class itself, unchanged at run time; only its
signature is spelt out: every field optional, secrets given as `str` or `SecretStr`.
"""

from __future__ import annotations

from typing import Protocol, TypedDict, cast

from pydantic import SecretStr
from typing_extensions import Unpack

from bot.config import Environment


class EnvironmentFields(TypedDict, total=False):
    """The keyword arguments `Environment(...)` takes, each with what pydantic accepts for it."""

    slack_bot_token: str | SecretStr | None
    slack_signing_secret: str | SecretStr | None
    slack_app_token: str | SecretStr | None
    slack_api_url: str
    database_url: str
    config_path: str
    dma_username: str | None
    dma_password: str | SecretStr | None
    log_format: str | None


class EnvironmentConstructor(Protocol):
    """The call `Environment(**fields)`."""

    def __call__(self, **fields: Unpack[EnvironmentFields]) -> Environment: ...


make_environment = cast(EnvironmentConstructor, Environment)
