"""Slack pacing through the real sink and the Slack double, in virtual time: board edits share a
channel's pace with posts, coalesced to the newest, and never delay a thread reply."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from slack_sdk import WebClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import FakeClock
from bot.delivery import Delivery
from bot.outbox import Outgoing
from bot.slack.sink import SlackSink
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work
from storage.enums import UNSENT
from storage.models import OutboxMessage
from tests.support.databases import fresh_sqlite
from tests.support.slack_double import SlackDouble

CHANNEL = "C0PACE"
RUNS = 10
TICK = 0.25  # how often the outbox delivers (virtual seconds)


@dataclass
class TimedSink:
    """The real Slack sink, noting the virtual time of every delivery."""

    inner: SlackSink
    clock: FakeClock
    sent: list[tuple[float, str, str]] = field(default_factory=list)  # (t, kind, text)
    start: datetime | None = None

    def send(self, message: Outgoing) -> str | None:
        ts = self.inner.send(message)
        at = (self.clock.now() - (self.start or self.clock.now())).total_seconds()
        self.sent.append((at, message.kind, str(message.payload.get("text", ""))))
        return ts


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fresh_sqlite(tmp_path))
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def enqueue(sessions: sessionmaker[Session], clock: FakeClock, run_id: int, text: str, *,
            kind: str = "post", key: str | None = None) -> None:
    with unit_of_work(sessions) as session:
        repo.enqueue_message(session=session, at=clock.now(), payload={"text": text},
                             channel=CHANNEL, run_id=run_id, kind=kind,
                             thread=kind == "post" and key is None, key=key)


# Keyed by run id; an edit need not belong to a run (its run_id column is nullable).
def waiting_edits(sessions: sessionmaker[Session]) -> dict[int | None, int]:
    with unit_of_work(sessions) as session:
        rows = session.execute(
            select(OutboxMessage.run_id, func.count()).where(
                OutboxMessage.kind == "update", OutboxMessage.status.in_(UNSENT))
            .group_by(OutboxMessage.run_id))
        return {run_id: count for run_id, count in rows}


def test_edits_share_the_pace_coalesce_and_never_delay_a_reply(
        sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    with SlackDouble() as slack:
        slack.add_channel(CHANNEL, "pace")
        sink = TimedSink(SlackSink(WebClient(token="xoxb-test", base_url=slack.base_url)),
                         clock)
        delivery = Delivery(sessions, sink, clock=clock, min_interval_s=1.0,
                            edit_interval_s=3.0)
        runs = []
        for n in range(RUNS):
            with unit_of_work(sessions) as session:
                runs.append(repo.add_run(
                    session=session, target="lab", target_kind="cluster", to_version="10.1.0.1",
                    strategy="basic", status="running", requester="U0", channel=CHANNEL,
                    plan={}, plan_digest="d", created_at=clock.now()).id)
            enqueue(sessions, clock, runs[-1], f"plan {n}", key=f"{runs[-1]}:plan")
        while len([s for s in sink.sent if s[2].startswith("plan")]) < RUNS:
            delivery.deliver()
            clock.advance(TICK)
        clock.advance(5)

        # Every run changes its board three times and says one thing in its thread, at once.
        sink.sent.clear()
        sink.start = clock.now()
        for n, run in enumerate(runs):
            for version in (1, 2, 3):
                enqueue(sessions, clock, run, f"board {n}.{version}", kind="update")
            enqueue(sessions, clock, run, f"reply {n}")
        late_reply_at = None
        for step in range(int(30 / TICK)):
            delivery.deliver()
            # Never more than one edit behind: older edits were superseded by the newest.
            assert all(count <= 1 for count in waiting_edits(sessions).values())
            clock.advance(TICK)
            if step == int(14.6 / TICK):  # while boards are still waiting for their turn
                late_reply_at = (clock.now() - sink.start).total_seconds()
                enqueue(sessions, clock, runs[0], "late reply")

        boards = {run: slack.message(CHANNEL, _ts(slack, n))["text"]
                  for n, run in enumerate(runs)}

    replies = [(t, text) for t, kind, text in sink.sent if text.startswith("reply")]
    edits = [(t, text) for t, kind, text in sink.sent if kind == "update"]
    # Thread replies go one a second from the start, as if no board existed.
    assert [t for t, _ in replies] == [float(n) for n in range(RUNS)]
    # Each board was edited once, to its newest state (coalesced), and every board got its turn.
    assert sorted(text for _, text in edits) == sorted(f"board {n}.3" for n in range(RUNS))
    assert sorted(boards.values()) == sorted(f"board {n}.3" for n in range(RUNS))
    # Edits share the channel's pace: none within a second of any message sent before it.
    for i, (t, kind, _) in enumerate(sink.sent):
        if kind == "update":
            assert all(t - before >= 1.0 for before, _, _ in sink.sent[:i]), sink.sent[:i + 1]
    # A reply queued while boards wait goes at the next delivery, ahead of every board.
    late = next(t for t, kind, text in sink.sent if text == "late reply")
    assert late_reply_at is not None and late - late_reply_at < TICK + 1e-9
    assert any(t > late for t, _ in edits)
    print(f"\n{RUNS} runs in one channel: replies at +{replies[0][0]:g}…+{replies[-1][0]:g} s, "
          f"boards at +{edits[0][0]:g}…+{edits[-1][0]:g} s (one edit each), a reply queued at "
          f"+{late_reply_at:g} s sent at +{late:g} s")


def _ts(slack: SlackDouble, n: int) -> str:
    return next(m["ts"] for m in slack.messages(CHANNEL)
                if m["text"].startswith(("plan ", "board ")) and _is_run(m["text"], n))


def _is_run(text: str, n: int) -> bool:
    return text == f"plan {n}" or text.startswith(f"board {n}.")


def test_a_board_that_keeps_changing_stays_at_most_one_edit_behind(
        sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    with SlackDouble() as slack:
        slack.add_channel(CHANNEL, "pace")
        sink = TimedSink(SlackSink(WebClient(token="xoxb-test", base_url=slack.base_url)),
                         clock)
        delivery = Delivery(sessions, sink, clock=clock, min_interval_s=1.0,
                            edit_interval_s=3.0)
        with unit_of_work(sessions) as session:
            run = repo.add_run(session=session, target="lab", target_kind="cluster",
                               to_version="10.1.0.1", strategy="basic", status="running",
                               requester="U0", channel=CHANNEL, plan={}, plan_digest="d",
                               created_at=clock.now()).id
        enqueue(sessions, clock, run, "plan", key=f"{run}:plan")
        delivery.deliver()
        sink.start = clock.now()
        for version in range(40):  # a new board state every half second for 20 s
            enqueue(sessions, clock, run, f"board {version}", kind="update")
            delivery.deliver()
            assert waiting_edits(sessions).get(run, 0) <= 1
            clock.advance(0.5)
        for _ in range(10):
            clock.advance(1)
            delivery.deliver()
        [plan] = slack.messages(CHANNEL)
    edits = [(t, text) for t, kind, text in sink.sent if kind == "update"]
    # One edit per 3 s (chat.update's tier), and the last state reached the board.
    assert all(b[0] - a[0] >= 3.0 for a, b in itertools.pairwise(edits))
    assert 6 <= len(edits) <= 8 and plan["text"] == "board 39"
    assert edits[-1][0] <= 23.0  # the newest state within one edit period of its arrival
