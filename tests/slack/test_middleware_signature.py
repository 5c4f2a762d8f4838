"""Only requests Slack signed, recently, get through; anything else changes nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from slack_bolt import BoltRequest, BoltResponse

from bot.slack.middleware import UnixClock, VerifySignature
from storage import repo
from storage.db import unit_of_work
from storage.models import SlackEvent
from tests.support.signing import (
    block_action_body,
    event_body,
    reaction_event,
    sign,
    slash_command_body,
)
from tests.support.workspace import (
    APPROVERS,
    CHANNEL,
    SECRET,
    Workspace,
    workspace,
)

# Slack's published example (slack-notes.md), which slack-sdk's own tests use.
EXAMPLE_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
EXAMPLE_TIMESTAMP = "1531420618"
EXAMPLE_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmib"
    "IGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
EXAMPLE_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def verdict(body: str, signature: str, timestamp: str, now: float) -> bool:
    """Run the bot's signature middleware alone; True when it lets the request through."""
    check = VerifySignature(EXAMPLE_SECRET, UnixClock(lambda: now))
    request = BoltRequest(body=body, headers={"X-Slack-Signature": signature,
                                              "X-Slack-Request-Timestamp": timestamp})
    passed: list[bool] = []

    def go_on() -> BoltResponse:
        passed.append(True)
        return BoltResponse(status=200)

    # Alone, the middleware has no response to work on: it gets None (it never touches one).
    check.process(req=request, resp=None, next=go_on)  # type: ignore[arg-type]
    return bool(passed)


def test_slacks_published_example_passes_the_bots_check() -> None:
    now = float(EXAMPLE_TIMESTAMP) + 10
    assert verdict(EXAMPLE_BODY, EXAMPLE_SIGNATURE, EXAMPLE_TIMESTAMP, now)
    # One character changed, another secret's signature, or five minutes late: refused.
    assert not verdict(EXAMPLE_BODY.replace("roadrunner", "coyote"), EXAMPLE_SIGNATURE,
                       EXAMPLE_TIMESTAMP, now)
    assert not verdict(EXAMPLE_BODY, EXAMPLE_SIGNATURE.replace("a2114d", "a2114e"),
                       EXAMPLE_TIMESTAMP, now)
    assert not verdict(EXAMPLE_BODY, EXAMPLE_SIGNATURE, EXAMPLE_TIMESTAMP,
                       float(EXAMPLE_TIMESTAMP) + 301)


class Now:
    def __init__(self) -> None:
        self.value = time.time()

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def now() -> Now:
    return Now()


@pytest.fixture
def ws(tmp_path: Path, now: Now) -> Iterator[Workspace]:
    with workspace(tmp_path, unix_now=now) as built:
        yield built


def state(ws: Workspace) -> tuple[int, int, list[str]]:
    """Runs, Slack events remembered, and Slack calls other than auth.test."""
    with unit_of_work(ws.sessions) as session:
        runs = len(repo.list_runs(session=session))
        events = session.query(SlackEvent).count()
    return runs, events, [c.method for c in ws.slack.calls if c.method != "auth.test"]


def test_forged_requests_are_refused_and_change_nothing(ws: Workspace, now: Now) -> None:
    before = state(ws)
    body = slash_command_body("plan lab 10.1.0.1", user_id="U0OPERATOR", channel_id=CHANNEL)
    forged: dict[str, str | Sequence[str]] = {**sign("not-the-secret", body, int(now.value))}
    unsigned: dict[str, str | Sequence[str]] = {"X-Slack-Request-Timestamp": str(int(now.value))}

    for headers in (forged, unsigned, {}):
        response = ws.app.dispatch(BoltRequest(body=body, headers=headers))
        assert response.status == 401
    # A body changed after signing (the version) is refused too.
    signed: dict[str, str | Sequence[str]] = {**sign(SECRET, body, int(now.value))}
    tampered = body.replace("10.1.0.1", "10.0.0.4")
    assert ws.app.dispatch(BoltRequest(body=tampered, headers=signed)).status == 401
    assert state(ws) == before


def test_stale_and_replayed_requests_are_refused_and_change_nothing(ws: Workspace,
                                                                     now: Now) -> None:
    ws.command("plan lab 10.1.0.1")
    ts = ws.plan_ts()
    before = state(ws)

    # Signed six minutes ago: stale.
    event = reaction_event("reaction_added", user=APPROVERS[0], reaction="white_check_mark",
                           channel=CHANNEL, ts=ts, item_user="UBOT")
    stale = event_body(event, event_id="EvStale", event_time=int(now.value) - 360)
    assert ws.dispatch(stale, timestamp=int(now.value) - 360).status == 401

    # A valid click, captured and replayed six minutes later: refused.
    click = block_action_body(user=APPROVERS[0], channel=CHANNEL, message_ts=ts,
                              action_id="plan_approve", value="R1",
                              response_url=ws.slack.response_url("replay"))
    captured: dict[str, str | Sequence[str]] = {**sign(SECRET, click, int(now.value))}
    now.value += 360
    assert ws.app.dispatch(BoltRequest(body=click, headers=captured)).status == 401
    assert state(ws) == before
    assert ws.services.approvals("R1") == []
