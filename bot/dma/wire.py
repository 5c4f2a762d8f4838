"""What the wire tells the DMA client: why a connection failed, what an error answer says.

requests and urllib3 wrap the real cause of a failure several levels deep; these helpers dig it
out so the client can tell "refused before sending" (safe to resend) from "dropped after
sending" (read the cluster first), and show a person the innermost reason.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping

import requests
from urllib3.exceptions import NewConnectionError


def basic_token(username: str, password: str) -> str:
    """Return the base64 part of the Authorization header, to scrub it like the password."""
    raw = f"{username}:{password}"
    try:
        encoded = raw.encode("latin1")  # what requests sends for str credentials
    except UnicodeEncodeError:
        encoded = raw.encode()
    return base64.b64encode(encoded).decode("ascii")


def causes(exc: BaseException) -> Iterator[BaseException]:
    """Walk the exceptions that requests and urllib3 wrap (args, .reason, explicit causes)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # __context__ is left out on purpose: it can hold an unrelated, already handled error.
        linked = [getattr(current, "reason", None), current.__cause__, *current.args]
        stack.extend(e for e in linked if isinstance(e, BaseException))


def refused(exc: BaseException) -> bool:
    """Tell whether the connection failed before any byte of the request was sent."""
    return any(isinstance(e, NewConnectionError | ConnectionRefusedError) for e in causes(exc))


def root_detail(exc: BaseException) -> str:
    """Return the innermost cause's text, which names the actual failure."""
    root = exc
    for cause in causes(exc):
        root = cause
    return str(root) or type(root).__name__


def error_message(resp: requests.Response) -> str:
    """Return the plcm-error message of an error answer, or its short plain text, or ''."""
    try:
        data = resp.json()
    except ValueError:
        kind = resp.headers.get("Content-Type", "")
        return " ".join(resp.text.split())[:200] if kind.startswith("text/plain") else ""
    if isinstance(data, Mapping) and isinstance(data.get("message"), str):
        return str(data["message"])
    return ""
