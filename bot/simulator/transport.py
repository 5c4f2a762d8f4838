"""A requests transport that hands each request to the simulator in this process, without a socket.

The real DmaClient runs unchanged on top of it (its session simply has this adapter mounted for
the simulator's address), and a fault reaches it as the same requests exception that the HTTP
front end would cause: a dropped connection as a ConnectionError that names no refused connect, a
request left without an answer as a ReadTimeout (at once: waiting would only slow a test), a
stopped simulator as a refused connection. `tests/simulator/test_transport.py` holds the two
transports to the same outcomes.
"""

from __future__ import annotations

import errno
import http.client
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from bot.simulator.http import Dispatch

LOOPBACK = "127.0.0.1"  # the admin endpoints answer loopback clients only, as over HTTP


class InProcessAdapter(BaseAdapter):
    """Serve requests by calling a dispatcher in this process; answer with real Responses."""

    def __init__(self, dispatch: Dispatch, *, is_up: Callable[[], bool] = lambda: True) -> None:
        super().__init__()
        self._dispatch = dispatch
        self._is_up = is_up

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: bool | str = True, cert: Any = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        """Dispatch one prepared request; raise what requests raises for the same failure."""
        url = request.url or ""
        if not self._is_up():
            raise requests.exceptions.ConnectionError(_refused(url), request=request)
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = self._dispatch(request.method or "GET", target, headers, _body(request.body),
                               LOOPBACK)
        if reply.drop:
            raise requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", http.client.RemoteDisconnected(
                    "Remote end closed connection without response")), request=request)
        if reply.hang:
            raise requests.exceptions.ReadTimeout(
                f"{parts.netloc}: Read timed out. (read timeout={_read_timeout(timeout)})",
                request=request)
        return _response(request, reply.status, reply.wire_headers(), reply.payload())

    def close(self) -> None:
        """Nothing to release: there is no connection pool."""


def _refused(url: str) -> MaxRetryError:
    """Build what urllib3 raises when nothing listens on the port."""
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    reason = NewConnectionError(None, f"Failed to establish a new connection: {refused}")  # type: ignore[arg-type]
    reason.__cause__ = refused
    return MaxRetryError(None, url, reason)  # type: ignore[arg-type]


def _body(body: bytes | str | Any) -> bytes:
    """Return a prepared body as bytes (the client sends bytes, JSON or nothing)."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes):
        return body
    raise TypeError(f"the in-process transport cannot send a {type(body).__name__} body")


def _read_timeout(timeout: Any) -> Any:
    """Return the read part of a requests timeout (a number or a (connect, read) pair)."""
    return timeout[1] if isinstance(timeout, tuple) else timeout


def _response(request: requests.PreparedRequest, status: int,
              headers: list[tuple[str, str]], content: bytes) -> requests.Response:
    """Build the Response that requests would build from the same status line and bytes."""
    response = requests.Response()
    response.status_code = status
    response.reason = http.client.responses.get(status, "")
    response.headers = CaseInsensitiveDict(headers)
    response.encoding = get_encoding_from_headers(response.headers)
    response._content = content
    response.url = request.url or ""
    response.request = request
    return response
