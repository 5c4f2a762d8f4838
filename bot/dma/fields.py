"""Reading one field of a DMA answer: strict about types, and says what was expected.

The models in `bot/dma/models.py` read every field through these; a cluster's answer that does
not fit is a `DmaBadResponse` naming the field, never a KeyError or a NaN taken as a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.dma.errors import DmaBadResponse


def field_of(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str,
         *, optional: bool = False) -> Any:
    """Read one field, failing with a message that names the field and what was expected."""
    if not isinstance(data, Mapping):
        raise DmaBadResponse(f"{what}: expected a JSON object, got {type(data).__name__}")
    if key not in data or data[key] is None:
        if optional:
            return None
        raise DmaBadResponse(f"{what}: field '{key}' is missing")
    value = data[key]
    # bool is an int in Python; refuse it where a number is expected.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise DmaBadResponse(f"{what}: field '{key}' should be {type_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise DmaBadResponse(f"{what}: field '{key}' should be {type_name(kind)}, got {value!r}")
    return value


def number_of(data: Mapping[str, Any], key: str, what: str, *,
            minutes_up_to: float | None = None) -> float | None:
    """Read an optional finite number; an estimate also above zero and at most the limit."""
    # JSON parsers accept NaN and Infinity: a cluster's answer must never bring one in.
    value = field_of(data, key, (int, float), what, optional=True)
    if value is None or (math.isfinite(value) and (minutes_up_to is None
                                                   or 0 < value <= minutes_up_to)):
        return None if value is None else float(value)
    if minutes_up_to is None:
        raise DmaBadResponse(f"{what}: field '{key}' should be a finite number, got {value!r}")
    raise DmaBadResponse(f"{what}: '{key}' should be a number of minutes above 0 and at most "
                         f"{minutes_up_to:g} (dma.max_install_estimate), got {value!r}: the "
                         "cluster's estimate cannot be trusted, check the cluster")


def type_name(kind: type | tuple[type, ...]) -> str:
    """The expected type in words ("a string or an integer")."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({"str": "a string", "int": "an integer", "float": "a number",
                        "bool": "a boolean", "list": "a list", "dict": "an object"}.get(
                            k.__name__, k.__name__) for k in kinds)


def list_of(data: Mapping[str, Any], key: str, what: str) -> list[Any]:
    """An optional list field (missing or null is empty)."""
    return field_of(data, key, list, what, optional=True) or []


def time_of(value: str | None, what: str) -> datetime | None:
    """An optional ISO 8601 time (a trailing Z is UTC)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError) as exc:
        raise DmaBadResponse(f"{what}: '{value}' is not an ISO 8601 time") from exc
