"""A journal of the DMA requests made while a step is visited, kept for the evidence bundle.

The worker opens a recording around a visit (`recording()`); every `DmaClient` request made in
that context is noted, redacted: no credential, no URL user info or query, bodies cut short. With
no recording open, noting costs one context-variable lookup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

BODY_MAX = 4000  # characters kept of a request or response body
_SECRET_KEYS = re.compile(r"pass|secret|token|key|auth|credential", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(https?://)[^/@\s]+@")
_URL_QUERY = re.compile(r"(https?://[^\s?\"']+)\?[^\s\"']*")
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Exchange:
    """One request to a cluster and what came back."""

    at: datetime
    cluster: str
    method: str
    path: str
    status: int | None  # None: no answer (timeout, refused)
    elapsed_ms: int
    request: str | None
    response: str | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"at": self.at.isoformat(), "cluster": self.cluster, "method": self.method,
                "path": self.path, "status": self.status, "elapsed_ms": self.elapsed_ms,
                "request": self.request, "response": self.response, "error": self.error}


_current: ContextVar[list[Exchange] | None] = ContextVar("dma_journal", default=None)


@contextmanager
def recording() -> Iterator[list[Exchange]]:
    """Collect the exchanges made in this context until the block ends."""
    entries: list[Exchange] = []
    token = _current.set(entries)
    try:
        yield entries
    finally:
        _current.reset(token)


def note(*, cluster: str, method: str, path: str, status: int | None, elapsed_s: float,
         request: Any, response: str | None, error: str | None = None,
         secrets: tuple[str, ...] = ()) -> None:
    """Add one exchange to the open recording, if any, redacted."""
    entries = _current.get()
    if entries is None:
        return
    entries.append(Exchange(
        at=datetime.now(UTC), cluster=cluster, method=method, path=path, status=status,
        elapsed_ms=int(elapsed_s * 1000), request=redact_body(request, secrets),
        response=redact_body(response, secrets), error=error))


def redact_body(body: Any, secrets: tuple[str, ...] = ()) -> str | None:
    """A body as text with secret-looking fields, URL credentials and queries removed."""
    if body is None:
        return None
    if isinstance(body, bytes):
        return f"({len(body)} bytes)"
    value = body
    if isinstance(body, str):
        try:
            value = json.loads(body)
        except ValueError:
            value = body
    text = json.dumps(_scrub(value), ensure_ascii=False) if not isinstance(value, str) \
        else _scrub_text(value)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text if len(text) <= BODY_MAX else text[:BODY_MAX] + f"… ({len(text)} characters)"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEYS.search(str(k)) else _scrub(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return _scrub_text(value)
    return value


def _scrub_text(text: str) -> str:
    return _URL_QUERY.sub(r"\1?" + REDACTED, _URL_USERINFO.sub(r"\1" + REDACTED + "@", text))
