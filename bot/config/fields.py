"""The configuration's value types: each an annotated type whose check says what it expected.

A check raises ValueError with one line written for an operator ("expected ..., got ..."); the
problems module puts the key in front of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, ValidationInfo

from bot.engine.durations import DurationError, parse_duration, spell_duration
from bot.engine.versions import InvalidVersion, parse_version

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PRINCIPAL_RE = re.compile(r"[UWS][A-Z0-9]{2,}")
_CHANNEL_RE = re.compile(r"[CGD][A-Z0-9]{2,}")
_REACTION_RE = re.compile(r"[^\sA-Z:]+")
_SHA1_RE = re.compile(r"[0-9a-fA-F]{40}")


def show_value(value: object) -> str:
    """Render a user's value briefly for a message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pattern(regex: re.Pattern[str], expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"expected {expected}, got {show_value(value)}")
        return value
    return AfterValidator(check)


def _http_url(example: str) -> AfterValidator:
    def check(value: str) -> str:
        parts = urlsplit(value)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if (parts.scheme not in ("http", "https") or not parts.hostname or not port_ok
                or any(c.isspace() for c in value)):
            raise ValueError(f"expected an http:// or https:// URL with a host, like {example}, "
                             f"got {show_value(value)}")
        return value
    return AfterValidator(check)


def _check_ca_bundle(value: str | None, info: ValidationInfo) -> str | None:
    # A relative path is read relative to the configuration file, not to wherever the bot starts.
    if value is None:
        return None
    base = Path((info.context or {}).get("base_dir") or ".")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (base / path).absolute()
    if not path.is_file():
        raise ValueError(f"CA bundle file not found: {str(path)!r}")
    return str(path)


def _to_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise DurationError(show_value(value))  # a list or a mapping, where a duration belongs


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"expected a duration longer than zero, got {spell_duration(value)}")
    return value


def _dma_version(value: str) -> str:
    # The engine's parser, so the config accepts exactly the versions a plan can be made for.
    try:
        parse_version(value)
    except InvalidVersion:
        raise ValueError("expected a DMA version like 10.0.0.3, 5.2.2.6 or 6.0.1J, got "
                         f"{show_value(value)}") from None
    return value


# As JSON a duration is spelt the way the file spells it, so a dumped Settings loads back.
Duration = Annotated[timedelta, BeforeValidator(_to_duration),
                     PlainSerializer(spell_duration, return_type=str, when_used="json")]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
Name = Annotated[str, _pattern(NAME_RE, "a name of letters, digits, '.', '_' or '-' "
                                        "(it is typed in /upgrade commands)")]
Version = Annotated[str, AfterValidator(_dma_version)]
SlackPrincipal = Annotated[str, _pattern(_PRINCIPAL_RE, "a Slack user id (U... or W...) or "
                                                        "user-group id (S...)")]
SlackChannel = Annotated[str, _pattern(_CHANNEL_RE, "a Slack channel id (C..., G... or D...)")]
Reaction = Annotated[str, _pattern(_REACTION_RE, "a reaction name in lowercase without colons "
                                                 "or spaces, like white_check_mark")]
CaBundle = Annotated[str, AfterValidator(_check_ca_bundle)]
Port = Annotated[int, Field(ge=1, le=65535)]
ApiUrl = Annotated[str, _http_url("https://dma-dallas.example.com:8443/api/rest")]
PackageUrl = Annotated[str, _http_url("https://files.example.com/dma/10.1.0.1.bin")]
Sha1 = Annotated[str, _pattern(_SHA1_RE, "40 hexadecimal digits"), AfterValidator(str.lower)]
