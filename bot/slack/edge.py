"""The HTTP edge in front of bolt: bad requests are refused before anything parses them.

bolt parses a body (and reads fields out of it) before its own signature check, so a body that
is not what its content type says, a huge one or a deeply nested one would reach a traceback and
a 500. Here, in order: the size (413), the timestamp and the signature, checked over the raw
bytes (401), the UTF-8 and the content type's grammar (400). Each refusal is one warning line
that quotes nothing of the request. What passes is handed to bolt exactly as it came.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20  # Slack's largest payloads (a whole message in a click) are far below
MAX_DEPTH = 32  # Slack's payloads nest about 8 deep; deeper is not Slack
STALE_AFTER_S = 300  # Slack's replay window
FORM, JSON = "application/x-www-form-urlencoded", "application/json"


class Refusal(Exception):
    """A request refused at the edge: the HTTP status and why (no request content)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Edge:
    """POST /slack/events: refuse what is not a well-formed, signed Slack request; else bolt."""

    def __init__(self, app: App, signing_secret: str, *,
                 now: Callable[[], float] = time.time) -> None:
        self.app = app
        self._secret = signing_secret.encode()
        self._now = now

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request to the events path."""
        headers = _headers(environ)
        try:
            raw = _body(environ)
            self._verify(headers, raw)
            text = _parsed(raw, headers.get("content-type", ""))
            request = _request(text, environ, headers)
        except Refusal as refusal:
            log.warning("refused a request to /slack/events: %s (HTTP %d)", refusal.reason,
                        refusal.status)
            return _answer(start_response, BoltResponse(status=refusal.status,
                                                        body=refusal.reason))
        return _answer(start_response, self.app.dispatch(request))

    def _verify(self, headers: dict[str, str], raw: bytes) -> None:
        stamp = headers.get("x-slack-request-timestamp", "")
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise Refusal(401, "missing or non-numeric X-Slack-Request-Timestamp")
        if abs(self._now() - int(stamp)) > STALE_AFTER_S:
            raise Refusal(401, "stale X-Slack-Request-Timestamp (more than 5 minutes off)")
        signature = headers.get("x-slack-signature", "")
        mac = hmac.new(self._secret, b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256)
        expected = ("v0=" + mac.hexdigest()).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise Refusal(401, "missing or bad X-Slack-Signature")


def _request(text: str, environ: WSGIEnvironment, headers: dict[str, str]) -> BoltRequest:
    """Bolt's request; it reads ids out of the payload, which must not fail on odd shapes."""
    try:
        return BoltRequest(body=text, query=str(environ.get("QUERY_STRING", "")),
                           headers=dict(headers))
    except Exception:  # bolt's id extraction met a field of another type than Slack's
        raise Refusal(400, "payload fields are not shaped as Slack's") from None


def _headers(environ: WSGIEnvironment) -> dict[str, str]:
    found = {key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items()
             if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            found[key.replace("_", "-").lower()] = str(environ[key])
    return found


def _body(environ: WSGIEnvironment) -> bytes:
    length = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if not length.isdigit():
        raise Refusal(400, "missing or non-numeric Content-Length")
    if int(length) > MAX_BODY_BYTES:
        raise Refusal(413, f"body over {MAX_BODY_BYTES} bytes")
    raw: bytes = environ["wsgi.input"].read(int(length)) if int(length) else b""
    return raw


def _parsed(raw: bytes, content_type: str) -> str:
    """Check that the body is what its content type says, the way bolt will read it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "body is not UTF-8") from None
    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON or text.startswith("{"):  # bolt reads either as JSON
        _json_object(text, "body")
    elif kind == FORM:
        fields = _form(text)
        if "payload" in text:  # bolt reads a `payload` field as the JSON payload
            _json_object(fields.get("payload", "{}"), "payload field")
    elif text:
        raise Refusal(415, "content type is neither JSON nor a form")
    return text


def _form(text: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                              max_num_fields=200))
    except ValueError:
        raise Refusal(400, "body is not a well-formed form") from None


def _json_object(text: str, what: str) -> None:
    try:
        value: Any = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise Refusal(400, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise Refusal(400, f"{what} is not a JSON object")
    if _depth(value) > MAX_DEPTH:
        raise Refusal(400, f"{what} nests deeper than {MAX_DEPTH} levels")


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """The deepest nesting of objects and lists in a parsed document (no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _answer(start_response: StartResponse, response: BoltResponse) -> Iterable[bytes]:
    data = response.body.encode() if isinstance(response.body, str) else bytes(response.body)
    headers = [(name, value) for name, values in response.headers.items()
               if name.lower() != "content-length" for value in values]
    headers.append(("Content-Length", str(len(data))))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "text/plain; charset=utf-8"))
    start_response(f"{response.status} {_PHRASES.get(response.status, 'Status')}", headers)
    return [data]


_PHRASES = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            413: "Payload Too Large", 415: "Unsupported Media Type",
            500: "Internal Server Error"}


class GuardedSocketModeHandler(SocketModeHandler):
    """Socket Mode's edge: an envelope whose payload bolt cannot even read is acked, not raised.

    Envelopes come from Slack over the app token's socket, so this is a belt for a payload of an
    unexpected shape: bolt reads ids out of it while building its request, before any guard.
    """

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        """Ack and log an unreadable payload once; hand the rest to bolt."""
        try:
            BoltRequest(mode="socket_mode", body=req.payload)
        except Exception:  # bolt's id extraction met a field of another type than Slack's
            log.warning("acknowledged and ignored a Socket Mode %s envelope: its payload is not "
                        "shaped as Slack's", str(req.type)[:40])
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        super().handle(client, req)  # type: ignore[arg-type]  # bolt types it narrower
