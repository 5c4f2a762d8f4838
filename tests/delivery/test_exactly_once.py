"""The outbox never posts a message twice and honours Slack's Retry-After: a post whose send
outcome is unknown (the process died after Slack took it, or the answer timed out) is looked up
by the outbox id in its metadata before it is sent again; a 429 on an edit holds the run's later
edits too; the claim lease is short, so a crash delays a thread by seconds."""

from __future__ import annotations

import pytest

from bot.delivery import Delivery
from bot.outbox import Outgoing, RetryLater
from bot.slack.sink import METADATA_EVENT, SlackSink
from storage import repo
from storage.db import unit_of_work
from tests.support.workspace import APPROVERS, CHANNEL, Workspace


def crash_after_slack_answered(ws: Workspace, *, thread: bool = False) -> Outgoing:
    """Claim what may go, send the post, then die before recording any outcome."""
    claims = ws.delivery._claim()
    [claim] = [c for c in claims if c.message.kind == "post" and c.message.thread == thread]
    ws.delivery.sink.send(claim.message)  # Slack has it; the commit never happens
    return claim.message


def test_a_plan_posted_before_a_crash_is_found_not_posted_again(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    lost = crash_after_slack_answered(ws)
    [posted] = ws.slack.messages(CHANNEL)
    assert posted["metadata"] == {"event_type": METADATA_EVENT,
                                  "event_payload": {"outbox_id": lost.id}}

    assert ws.deliver() == 0  # still under the dead process's lease: nothing moves
    ws.clock.advance(10)  # the lease (timing.outbox_lease, 10 s) is over
    ws.deliver()

    assert [m["ts"] for m in ws.slack.messages(CHANNEL)] == [posted["ts"]]  # once
    assert ws.run().message_ts == posted["ts"]  # and the run knows its plan message
    assert len(ws.slack.calls_to("conversations.history")) == 1


def test_a_thread_reply_posted_before_a_crash_is_found_in_the_thread(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.deliver()
    before = len(ws.thread())
    ws.command("abort R1")
    crash_after_slack_answered(ws, thread=True)
    ws.clock.advance(10)
    ws.deliver()

    assert len(ws.thread()) == before + 1
    assert len(ws.slack.calls_to("conversations.replies")) == 1
    assert ws.slack.calls_to("conversations.history") == []


def test_a_timeout_after_slack_took_the_post_is_looked_up_too(ws: Workspace) -> None:
    class TimesOutAfterPosting(SlackSink):
        def send(self, message: Outgoing) -> str | None:
            super().send(message)
            raise RetryLater(2, "Slack unreachable (TimeoutError)", uncertain=True)

    flaky = Delivery(ws.sessions, TimesOutAfterPosting(ws.app.client), clock=ws.clock,
                     min_interval_s=0, edit_interval_s=0)
    ws.command("plan lab 10.1.0.1")
    flaky.deliver()
    ws.clock.advance(2)
    ws.deliver()
    assert len(ws.slack.messages(CHANNEL)) == 1 and ws.run().message_ts is not None


def test_a_post_that_never_reached_slack_is_posted_after_the_lookup(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.slack.fail("chat.postMessage", status=503)  # 5xx: Slack may or may not have it
    ws.deliver()
    assert ws.slack.messages(CHANNEL) == []
    ws.clock.advance(3)
    ws.deliver()
    assert len(ws.slack.messages(CHANNEL)) == 1
    assert len(ws.slack.calls_to("conversations.history")) == 1


def test_no_send_starts_without_time_left_on_the_lease(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    [claim, *_] = ws.delivery._claim()
    ws.clock.advance(6)  # 4 s of the 10 s lease left: less than the 5 s a send may take
    assert ws.delivery._send(claim) == 0
    assert ws.slack.messages(CHANNEL) == []
    ws.deliver()  # claimed afresh, with a whole lease
    assert len(ws.slack.messages(CHANNEL)) == 1


def test_a_429_on_an_edit_holds_every_edit_of_that_channel(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.deliver()
    ws.slack.fail("chat.update", retry_after=3)
    ws.click("plan_approve", user=APPROVERS[0])  # queues a board edit: 429, Retry-After 3 s
    ws.deliver()
    assert [c.outcome for c in ws.slack.calls_to("chat.update")] == ["429 ratelimited"]

    for n in range(4):  # newer edits keep coming; none goes before Slack's 3 s are over
        with unit_of_work(ws.sessions) as session:
            repo.enqueue_message(session=session, at=ws.clock.now(), channel=CHANNEL,
                                 run_id=ws.run().id, kind="update",
                                 payload={"text": f"board {n}"})
        ws.clock.advance(0.5)
        ws.deliver()
    assert len(ws.slack.calls_to("chat.update")) == 1
    ws.clock.advance(1.1)  # 3.1 s after the 429
    ws.deliver()
    assert [c.outcome for c in ws.slack.calls_to("chat.update")] == ["429 ratelimited", "ok"]
    assert ws.plan_message()["text"] == "board 3"  # the newest edit, once


@pytest.mark.parametrize("lease", ["1s", "0.5s"])
def test_the_outbox_lease_is_configurable_but_not_below_two_seconds(lease: str) -> None:
    from bot.config import ConfigError, load_settings_text

    with pytest.raises(ConfigError, match="outbox_lease"):
        load_settings_text(f"timing: {{outbox_lease: {lease}}}\n")
    assert load_settings_text("timing: {outbox_lease: 3s}\n").timing.outbox_lease.seconds == 3


def test_default_lease_is_seconds() -> None:
    from bot.config import Settings

    assert Settings().timing.outbox_lease.total_seconds() == 10
