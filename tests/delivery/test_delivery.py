"""Outbox delivery to Slack: order per thread, pace per channel, edits coalesced, never lost,
and safe when several processes share the database."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import FakeClock, SystemClock
from bot.delivery import Delivery, Queued, Recent, choose
from bot.outbox import BOARD, Outgoing, RetryLater
from storage import repo
from storage.db import unit_of_work
from storage.models import OutboxMessage

T0 = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def q(id: int, run: int | None, kind: str = "post", *, status: str = "pending",
      at: datetime = T0, channel: str = "C1", key: str | None = None) -> Queued:
    return Queued(id=id, run_id=run, channel=channel, kind=kind, status=status, not_before=at,
                  key=key)


def pick(queue: list[Queued], *, recent: Recent | None = None, plan_posted: bool = True,
         edit_every: timedelta = timedelta(0)) -> tuple[tuple[int, ...], tuple[int, ...]]:
    recent = recent or Recent()
    runs = {x.run_id for x in queue if x.run_id is not None}
    choice = choose(queue, now=T0, recent=recent, has_plan_message=dict.fromkeys(runs,
                                                                                plan_posted),
                    min_interval=SECOND, edit_interval=edit_every)
    return choice.send, choice.superseded


# -- what may go now (pure) ------------------------------------------------------------------


def test_a_thread_keeps_its_order_and_a_channel_gets_one_post_at_a_time() -> None:
    # Run 1's second reply waits for its first; run 2 shares the channel: it waits its turn.
    assert pick([q(1, 1), q(2, 1), q(3, 2)]) == ((1,), ())
    # In another channel, run 2 goes at the same time.
    assert pick([q(1, 1), q(2, 1), q(3, 2, channel="C2")]) == ((1, 3), ())


def test_a_message_delayed_by_slack_holds_back_its_thread_only() -> None:
    later = T0 + 30 * SECOND
    assert pick([q(1, 1, at=later), q(2, 1), q(3, 2, channel="C2")]) == ((3,), ())


def test_in_flight_and_recent_posts_pace_the_channel() -> None:
    flying = q(1, 1, status="sending", at=T0 + 60 * SECOND)
    assert pick([flying, q(2, 2)]) == ((), ())
    assert pick([q(2, 2)], recent=Recent(posts={"C1": T0 - SECOND / 2})) == ((), ())
    assert pick([q(2, 2)], recent=Recent(posts={"C1": T0 - SECOND})) == ((2,), ())


def test_a_file_upload_waits_for_the_posts_before_it_and_holds_back_none() -> None:
    # The timeline after the escalation prompt, not before it.
    assert pick([q(1, 1), q(2, 1, "upload"), q(3, 2)]) == ((1,), ())
    # A notice after it is not held back while the file is drawn and sent, nor is the channel.
    assert pick([q(2, 1, "upload"), q(3, 1)]) == ((2, 3), ())
    flying = q(2, 1, "upload", status="sending", at=T0 + 60 * SECOND)
    assert pick([flying, q(3, 1), q(4, 2)]) == ((3,), ())


def test_a_claim_whose_lease_expired_is_taken_again() -> None:
    assert pick([q(1, 1, status="sending", at=T0 - SECOND), q(2, 1)]) == ((1,), ())


def test_only_the_newest_edit_goes_and_only_once_the_plan_message_exists() -> None:
    edits = [q(1, 1, key="1:plan"), q(2, 1, "update"), q(3, 1, "update")]
    assert pick(edits, plan_posted=False) == ((1,), (2,))
    assert pick(edits[1:], plan_posted=True) == ((3,), (2,))
    # An edit is paced per message, and takes the channel's turn only when no post does.
    assert pick([q(4, 1), q(5, 1, "update")]) == ((4,), ())
    assert pick([q(5, 1, "update")], recent=Recent(edits={1: T0 - SECOND}),
                edit_every=3 * SECOND) == ((), ())


def test_board_edits_share_the_channel_pace_and_posts_go_first() -> None:
    # Run 1's board edit and run 2's thread reply are due in one channel: the reply goes.
    assert pick([q(1, 1, "update"), q(2, 2)]) == ((2,), ())
    # A post within the pace keeps edits out of the channel; after it, the edit goes.
    assert pick([q(1, 1, "update")], recent=Recent(posts={"C1": T0 - SECOND / 2})) == ((), ())
    assert pick([q(1, 1, "update")], recent=Recent(posts={"C1": T0 - SECOND})) == ((1,), ())
    # An edit just sent in the channel holds back other boards, never a thread reply.
    just_edited = Recent(edit_channels={"C1": T0 - SECOND / 2})
    assert pick([q(1, 1, "update"), q(2, 2)], recent=just_edited) == ((2,), ())
    assert pick([q(1, 1, "update")], recent=just_edited) == ((), ())
    # One edit per channel per turn; another channel has its own.
    assert pick([q(1, 1, "update"), q(2, 2, "update"), q(3, 3, "update", channel="C2")]) \
        == ((1, 3), ())


def test_the_board_edited_longest_ago_takes_the_channel_turn() -> None:
    # Run 1 keeps changing (its waiting edit is always the newest row); run 2's board was
    # edited longer ago, so it goes first, and no board starves.
    recent = Recent(edits={1: T0 - 10 * SECOND, 2: T0 - 60 * SECOND})
    assert pick([q(7, 1, "update"), q(9, 2, "update")], recent=recent,
                edit_every=3 * SECOND) == ((9,), ())
    assert pick([q(8, 2, "update"), q(9, 1, "update")],
                recent=Recent(edits={1: T0 - 60 * SECOND, 2: T0 - 10 * SECOND}),
                edit_every=3 * SECOND) == ((9,), ())


# -- against the database ------------------------------------------------------------------


class Recorder:
    """A sink that records, can fail on demand, and hands out Slack-like ts."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.sent: list[tuple[Outgoing, float]] = []
        self.down = False
        self.pause_s = pause_s
        self._lock = threading.Lock()
        self._ts = 0

    def send(self, message: Outgoing) -> str | None:
        if self.down:
            raise RetryLater(5, "Slack error service_unavailable")
        time.sleep(self.pause_s)
        with self._lock:
            self._ts += 1
            self.sent.append((message, time.monotonic()))
            return f"1700000000.{self._ts:06d}" if message.kind == "post" else None

    def ids(self) -> list[int]:
        return [m.id for m, _ in self.sent]


def add_run(sessions: sessionmaker[Session], channel: str = "C1") -> int:
    with unit_of_work(sessions) as session:
        run = repo.add_run(session=session, target="lab", target_kind="cluster",
                           to_version="10.1.0.1", strategy="basic", status="running",
                           requester="U0", channel=channel, plan={}, plan_digest="d",
                           created_at=T0)
        return run.id


def enqueue(sessions: sessionmaker[Session], run_id: int, text: str, *, kind: str = "post",
            key: str | None = None, channel: str = "C1", at: datetime = T0) -> int:
    with unit_of_work(sessions) as session:
        return repo.enqueue_message(session=session, at=at, payload={"text": text},
                                    channel=channel, run_id=run_id, kind=kind,
                                    thread=key is None and kind == "post", key=key).id


def test_delivery_posts_the_plan_first_then_threads_and_edits_it(
        session_factory: sessionmaker[Session]) -> None:
    run = add_run(session_factory)
    plan = enqueue(session_factory, run, "plan", key=f"{run}:plan")
    enqueue(session_factory, run, "board 1", kind="update")
    enqueue(session_factory, run, "started")
    enqueue(session_factory, run, "board 2", kind="update")
    sink = Recorder()
    delivery = Delivery(session_factory, sink, clock=FakeClock(T0), min_interval_s=0,
                             edit_interval_s=0)

    assert delivery.deliver() == 3
    kinds = [(m.kind, m.payload["text"], m.thread_ts) for m, _ in sink.sent]
    assert kinds[0] == ("post", "plan", None)
    # The reply goes in the plan's thread, the edit edits the plan; the older edit is skipped.
    assert set(kinds[1:]) == {("post", "started", "1700000000.000001"),
                              ("update", "board 2", "1700000000.000001")}
    with unit_of_work(session_factory) as session:
        stored_run = repo.get_run(session=session, ref=run)
        assert stored_run is not None
        assert stored_run.message_ts == "1700000000.000001"
        plan_message = session.get(OutboxMessage, plan)
        assert plan_message is not None
        assert plan_message.status == "sent"
        assert repo.outbox_backlog(session=session, now=T0) == (0, None)


def test_a_board_edit_is_drawn_when_it_is_sent_and_a_superseded_one_never(
        session_factory: sessionmaker[Session]) -> None:
    run = add_run(session_factory)
    enqueue(session_factory, run, "plan", key=f"{run}:plan")
    for _ in range(5):  # five changes before the next delivery: one edit goes, drawn once
        with unit_of_work(session_factory) as session:
            repo.enqueue_message(session=session, at=T0, payload={BOARD: run}, channel="C1",
                                 run_id=run, kind="update")
    drawn: list[int] = []

    def boards(run_id: int) -> dict[str, str]:
        drawn.append(run_id)
        return {"text": f"board of run {run_id}, drawn #{len(drawn)}"}

    sink = Recorder()
    delivery = Delivery(session_factory, sink, clock=FakeClock(T0), min_interval_s=0,
                        edit_interval_s=0, boards=boards)
    assert delivery.deliver() == 2
    assert drawn == [run]
    assert [(m.kind, m.payload["text"]) for m, _ in sink.sent] == [
        ("post", "plan"), ("update", f"board of run {run}, drawn #1")]


def test_a_board_edit_nobody_can_draw_is_dropped_not_sent_raw(
        session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture) -> None:
    run = add_run(session_factory)
    enqueue(session_factory, run, "plan", key=f"{run}:plan")
    with unit_of_work(session_factory) as session:
        edit = repo.enqueue_message(session=session, at=T0, payload={BOARD: run},
                                    channel="C1", run_id=run, kind="update").id
    sink = Recorder()
    delivery = Delivery(session_factory, sink, clock=FakeClock(T0), min_interval_s=0,
                        edit_interval_s=0, boards=lambda _run_id: None)  # the run is gone
    with caplog.at_level(logging.INFO, logger="bot.delivery"):
        delivery.deliver()
    assert [m.kind for m, _ in sink.sent] == ["post"]
    with unit_of_work(session_factory) as session:
        edit_message = session.get(OutboxMessage, edit)
        assert edit_message is not None
        assert edit_message.status == "sent"  # settled, never retried
    assert "gone; dropped" in caplog.text


def test_an_outage_loses_nothing_and_keeps_the_order(
        session_factory: sessionmaker[Session]) -> None:
    clock = FakeClock(T0)
    run = add_run(session_factory)
    enqueue(session_factory, run, "plan", key=f"{run}:plan")
    sink = Recorder()
    delivery = Delivery(session_factory, sink, clock=clock, min_interval_s=0,
                             edit_interval_s=0)
    delivery.deliver()

    sink.down = True
    for text in ("dallas verified", "denver verified", "completed"):
        enqueue(session_factory, run, text, at=clock.now())
    assert delivery.deliver() == 0
    with unit_of_work(session_factory) as session:
        assert repo.outbox_backlog(session=session, now=clock.now())[0] == 3

    sink.down = False
    assert delivery.deliver() == 0  # Slack asked for 5 s: the outbox waits, nobody blocks
    clock.advance(5)
    assert delivery.deliver() == 3
    assert [m.payload["text"] for m, _ in sink.sent] == [
        "plan", "dallas verified", "denver verified", "completed"]


@pytest.mark.timeout(60)
def test_two_processes_deliver_every_message_once_in_order_and_paced(
        database_url: str, session_factory: sessionmaker[Session]) -> None:
    from storage.db import make_engine, make_session_factory

    now = SystemClock().now()
    runs = [add_run(session_factory, channel=c) for c in ("C1", "C1", "C2")]
    channel = {run: "C2" if run == runs[2] else "C1" for run in runs}
    for run in runs:
        enqueue(session_factory, run, f"R{run} plan", key=f"{run}:plan", channel=channel[run],
                at=now)
    for i in range(6):
        for run in runs:
            enqueue(session_factory, run, f"R{run} reply {i}", channel=channel[run], at=now)
    sink = Recorder(pause_s=0.01)
    engines = [make_engine(database_url) for _ in range(2)]  # two "processes"
    deliveries = [Delivery(make_session_factory(e), sink, clock=SystemClock(),
                                min_interval_s=0.05, edit_interval_s=0, owner=f"p{i}")
                  for i, e in enumerate(engines)]
    stop = time.monotonic() + 30

    def loop(delivery: Delivery) -> None:
        while len(sink.sent) < 21 and time.monotonic() < stop:
            delivery.deliver()
            time.sleep(0.005)

    threads = [threading.Thread(target=loop, args=(d,)) for d in deliveries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()

    assert sorted(sink.ids()) == sorted(set(sink.ids())) and len(sink.ids()) == 21
    for run in runs:
        texts = [m.payload["text"] for m, _ in sink.sent if m.run_name == f"R{run}"]
        assert texts == [f"R{run} plan", *(f"R{run} reply {i}" for i in range(6))]
    # At most one new message per channel per min_interval, across both processes.
    c1 = [at for m, at in sink.sent if m.channel == "C1"]
    assert all(b - a >= 0.04 for a, b in itertools.pairwise(c1)), c1
