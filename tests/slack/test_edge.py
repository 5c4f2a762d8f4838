"""The HTTP edge: bad requests are refused before bolt parses them, with one warning line each;
signed payloads that lack a field a listener reads are acknowledged and logged once; a fuzz of
thousands of mutated signed and unsigned payloads gives no 5xx and no traceback in the log."""

from __future__ import annotations

import io
import json
import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.flows.health import Health
from bot.slack.server import wsgi_app
from tests.support.signing import (
    block_action_payload,
    event_payload,
    reaction_event,
    sign,
    slash_command_payload,
)
from tests.support.workspace import APPROVERS, CHANNEL, OPERATOR, SECRET, Workspace, workspace

Wsgi = Any


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with workspace(tmp_path) as built:
        yield built


def edge(ws: Workspace) -> Wsgi:
    health = Health(ws.sessions, ws.clock, "http", worker_id="w", started_at=ws.clock.now(),
                    stalled_after_s=60)
    return wsgi_app(ws.app, health, signing_secret=SECRET)


def post(application: Wsgi, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST /slack/events through the WSGI app, the way waitress calls it."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)), "wsgi.url_scheme": "http"}
    for name, value in headers.items():
        if name.lower() == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name.lower() != "content-length":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    seen: list[str] = []
    data = b"".join(application(environ, lambda status, _headers: seen.append(status)))
    return int(seen[0].split()[0]), data


def signed(body: str | bytes, *, content_type: str | None = None) -> dict[str, str]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    headers = sign(SECRET, text, int(time.time()))
    if isinstance(body, bytes):  # sign the raw bytes as Slack would
        import hashlib
        import hmac
        stamp = headers["X-Slack-Request-Timestamp"]
        mac = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
        headers["X-Slack-Signature"] = "v0=" + mac.hexdigest()
    if content_type:
        headers["Content-Type"] = content_type
    return headers


def command_body(ws: Workspace, text: str) -> str:
    return urlencode(slash_command_payload(text, user_id=OPERATOR, channel_id=CHANNEL,
                                           response_url=ws.slack.response_url("edge")))


BAD_REQUESTS = [
    ("a body that is not JSON", b'{"type": "event_callback", ', "application/json", 400),
    ("a payload field that is not JSON", b"payload=%7Bnot+json", None, 400),
    ("a body that is not UTF-8", b"command=%2Fupgrade&text=\xff\xfe", None, 400),
    ("a JSON array", b"[1, 2, 3]", "application/json", 400),
    ("deep nesting", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", 400),
    ("NaN in JSON", b'{"type": "event_callback", "x": NaN}', "application/json", 400),
    ("a form that is not a form", b"a=1&&&=&b", "application/x-www-form-urlencoded", 400),
    ("an unknown content type", b"hello", "text/plain", 415),
]


@pytest.mark.parametrize(("what", "body", "content_type", "expected"), BAD_REQUESTS,
                         ids=[b[0] for b in BAD_REQUESTS])
def test_malformed_signed_bodies_are_refused_with_one_warning(
        ws: Workspace, caplog: pytest.LogCaptureFixture, what: str, body: bytes,
        content_type: str | None, expected: int) -> None:
    caplog.set_level(logging.DEBUG)
    status, _ = post(edge(ws), body, signed(body, content_type=content_type))
    assert status == expected, what
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "refused a request" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]


def test_timestamps_signatures_and_sizes_are_checked_first(
        ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    application, body = edge(ws), command_body(ws, "help").encode()
    good = signed(body)
    cases = {
        "no timestamp": ({k: v for k, v in good.items() if k != "X-Slack-Request-Timestamp"},
                         401),
        "a non-numeric timestamp": ({**good, "X-Slack-Request-Timestamp": "soon"}, 401),
        "a stale timestamp": (signed(body) | {"X-Slack-Request-Timestamp": "1531420618"}, 401),
        "no signature": ({k: v for k, v in good.items() if k != "X-Slack-Signature"}, 401),
        "a signature of another body": ({**good, "X-Slack-Signature": "v0=" + "0" * 64}, 401),
        "a non-ASCII signature": ({**good, "X-Slack-Signature": "v0=é"}, 401),
    }
    for what, (headers, expected) in cases.items():
        assert post(application, body, headers)[0] == expected, what
    huge = b"text=" + b"a" * (2 << 20)
    assert post(application, huge, signed(huge))[0] == 413
    assert post(application, body, good)[0] == 200  # the same request, well signed, goes in
    assert not [r for r in caplog.records if r.exc_info]


def test_a_signed_payload_missing_a_field_is_acknowledged_and_logged_once(
        ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.deliver()
    application = edge(ws)
    click = block_action_payload(user=APPROVERS[0], channel=CHANNEL,
                                 message_ts=ws.plan_ts(), action_id="plan_approve", value="R1",
                                 response_url=ws.slack.response_url("x"))
    del click["actions"]
    body = urlencode({"payload": json.dumps(click)})
    caplog.set_level(logging.INFO)
    caplog.clear()
    assert post(application, body.encode(), signed(body))[0] == 200
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == ["acknowledged and ignored a block_actions payload: `actions` should be "
                      "list, got nothing"]
    assert ws.services.approvals("R1") == []  # nothing counted


# -- the fuzz --------------------------------------------------------------------------------

ODD_VALUES: list[Any] = [None, 0, -1, 2**63, 10**400, "", "<!channel>", "x" * 5000, [], {},
                         True, 1.5, [[[]]], "R" + "9" * 1990, "\u0000", {"id": ["U1"]}]


def seeds(ws: Workspace) -> list[tuple[str, dict[str, Any]]]:
    """Well-formed payloads of every kind the bot listens to (R1 exists)."""
    url = ws.slack.response_url("fuzz")
    texts = ["help", "status", "status R1", "history", "pause R1", "resume R1", "abort R9",
             "retry R1", "status R" + "9" * 30, "plan global <!channel>", "<!here> &"]
    out: list[tuple[str, dict[str, Any]]] = [
        ("form", slash_command_payload(t, user_id=OPERATOR, channel_id=CHANNEL,
                                       response_url=url)) for t in texts]
    for action in ("plan_approve", "plan_reject", "run_resume", "overrun_approve"):
        out.append(("payload", block_action_payload(
            user=APPROVERS[0], channel=CHANNEL, message_ts=ws.plan_ts(), action_id=action,
            value="R1", response_url=url)))
    for kind in ("reaction_added", "reaction_removed"):
        event = reaction_event(kind, user=APPROVERS[1], reaction="white_check_mark",  # type: ignore[arg-type]
                               channel=CHANNEL, ts=ws.plan_ts(), item_user="UBOT")
        out.append(("json", event_payload(event, event_id="Ev1", event_time=1)))
    out.append(("json", event_payload({"type": "app_home_opened", "user": OPERATOR,
                                       "tab": "home"}, event_id="Ev2", event_time=1)))
    return out


def mutate(rng: random.Random, payload: Any) -> Any:
    """Drop a field, or give it an odd value, somewhere in the payload."""
    copy = json.loads(json.dumps(payload))
    for _ in range(rng.randint(1, 3)):
        node = copy
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = rng.choice(keys)
            child = node[key]
            if isinstance(child, dict | list) and child and rng.random() < 0.6:
                node = child
                continue
            if isinstance(node, dict) and rng.random() < 0.3:
                del node[key]
            else:
                node[key] = rng.choice(ODD_VALUES)
            break
    return copy


def encode(kind: str, payload: dict[str, Any]) -> str:
    if kind == "form":
        return urlencode({k: v if isinstance(v, str) else json.dumps(v)
                          for k, v in payload.items()})
    if kind == "payload":
        return urlencode({"payload": json.dumps(payload)})
    return json.dumps(payload)


def damage(rng: random.Random, body: bytes) -> bytes:
    """Byte-level damage: truncation, a flipped byte, invalid UTF-8, a wrong wrapper."""
    choice = rng.randrange(4)
    if choice == 0:
        return body[: rng.randrange(len(body) + 1)]
    if choice == 1 and body:
        i = rng.randrange(len(body))
        return body[:i] + bytes([rng.randrange(256)]) + body[i + 1:]
    if choice == 2:
        return body + b"\xc3\x28"
    return b"payload=" + body


def test_fuzz_thousands_of_mutated_payloads_no_5xx_no_traceback(
        ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.deliver()
    application, rng = edge(ws), random.Random(10)
    bases = seeds(ws)
    caplog.set_level(logging.DEBUG)
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    for n in range(3000):
        kind, payload = rng.choice(bases)
        body = encode(kind, mutate(rng, payload)).encode()
        if n % 4 == 3:
            body = damage(rng, body)
        headers = signed(body)
        if n % 5 == 4:  # unsigned or badly signed
            headers.pop(rng.choice(["X-Slack-Signature", "X-Slack-Request-Timestamp"]))
        status, _ = post(application, body, headers)
        statuses[status] = statuses.get(status, 0) + 1
    took = time.perf_counter() - started
    print(f"\n3000 mutated requests in {took:.1f} s: {dict(sorted(statuses.items()))}")
    assert not [s for s in statuses if s >= 500], statuses
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, tracebacks[0].getMessage()
    answered = len(ws.slack.responses_posted("fuzz"))
    print(f"listeners answered {answered} of them by response_url")
    assert answered > 150  # many mutations were still well-formed and reached the listeners


# -- Socket Mode: no HTTP edge, the same guards ----------------------------------------------


class FakeSocketClient:
    """Records the envelope acks a Socket Mode handler sends."""

    def __init__(self) -> None:
        self.acked: list[str] = []
        self.logger = logging.getLogger("fake-socket")

    def send_socket_mode_response(self, response: Any) -> None:
        self.acked.append(response.envelope_id)


def test_socket_mode_payloads_get_the_same_guards_no_traceback(
        ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    from slack_sdk.socket_mode.request import SocketModeRequest

    from bot.slack.edge import GuardedSocketModeHandler

    ws.command("plan lab 10.1.0.1")
    ws.deliver()
    handler = GuardedSocketModeHandler(ws.app, app_token="xapp-test", web_client=ws.app.client)
    client, rng = FakeSocketClient(), random.Random(11)
    kinds = {"form": "slash_commands", "payload": "interactive", "json": "events_api"}
    bases = seeds(ws)
    caplog.set_level(logging.DEBUG)
    odd = {"type": "block_actions", "authorizations": "not a list", "user": {"id": "U1"}}
    handler.handle(client, SocketModeRequest(type="interactive", envelope_id="odd",  # type: ignore[arg-type]
                                             payload=odd))
    assert client.acked == ["odd"]
    for n in range(1000):
        kind, payload = rng.choice(bases)
        handler.handle(client, SocketModeRequest(  # type: ignore[arg-type]
            type=kinds[kind], envelope_id=f"e{n}", payload=mutate(rng, payload)))
    assert len(client.acked) == 1001  # every envelope acked, none raised
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, tracebacks[0].getMessage()


def test_slacks_url_verification_challenge_still_passes_the_edge(ws: Workspace) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps({"token": "t", "challenge": challenge, "type": "url_verification"})
    status, answer = post(edge(ws), body.encode(), signed(body))
    assert status == 200
    assert json.loads(answer) == {"challenge": challenge}
