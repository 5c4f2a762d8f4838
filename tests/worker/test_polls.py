"""The lean record of a poll: what it keeps when someone else touched the step meanwhile."""

from __future__ import annotations

from sqlalchemy import func, select, update

from bot.runs.outcomes import BOARD_AT
from bot.worker.runner import Visit
from storage.db import unit_of_work
from storage.models import DmaRequest, OutboxMessage, Step
from tests.support.engine_harness import Harness, harness


def next_poll(h: Harness, name: str, kind: str = "wait_login") -> Visit:
    """Run the upgrade until the worker claims a step of `kind` that it visited before."""
    for _ in range(2000):
        h.worker.housekeeping()
        visits = h.worker.claim(1)
        if not visits:
            due = h.worker.next_due()
            assert due is not None, h.run(name).status
            h.clock.set(due)
            continue
        visit = visits[0]
        if visit.ctx.kind == kind and BOARD_AT in visit.ctx.data:
            return visit
        h.worker.visit(visit)
    raise AssertionError(f"no second visit of a {kind} step")


def stored(h: Harness, step_id: int) -> Step:
    with unit_of_work(h.sessions) as session:
        step = session.get(Step, step_id)
        assert step is not None
        session.expunge(step)
        return step


def test_a_poll_keeps_what_an_operator_wrote_to_its_step_meanwhile(database_url: str) -> None:
    with harness(database_url) as h:
        name = h.plan(strategy="full-outage")
        visit = next_poll(h, name)
        with unit_of_work(h.sessions) as session:  # a control writes to the step mid-visit
            step = session.get(Step, visit.step_id)
            assert step is not None
            step.data = {**step.data, "operator_note": "checked the console"}
        h.worker.visit(visit)
        after = stored(h, visit.step_id)
        # The poll's own data is there, and so is the operator's: the full record merged.
        assert after.data["operator_note"] == "checked the console"
        assert after.data[BOARD_AT] == visit.ctx.data[BOARD_AT]
        assert after.claimed_by is None and after.next_check_at is not None
        assert after.status == "active"


def test_a_poll_whose_lease_was_taken_over_writes_nothing_but_its_requests(
        database_url: str) -> None:
    with harness(database_url) as h:
        name = h.plan(strategy="full-outage")
        visit = next_poll(h, name)
        with unit_of_work(h.sessions) as session:  # the lease expired; another worker has it
            session.execute(update(Step).where(Step.id == visit.step_id)
                            .values(claimed_by="other-worker"))
            sent_before = int(session.scalar(select(func.count()).select_from(DmaRequest)) or 0)
        before = stored(h, visit.step_id)
        h.worker.visit(visit)
        after = stored(h, visit.step_id)
        assert after.claimed_by == "other-worker"
        assert (after.data, after.next_check_at) == (before.data, before.next_check_at)
        with unit_of_work(h.sessions) as session:  # what reached the cluster is kept
            assert int(session.scalar(select(func.count()).select_from(DmaRequest)) or 0) > (
                sent_before)


def test_a_waiting_step_edits_the_board_once_a_minute_not_at_every_poll(
        database_url: str) -> None:
    with harness(database_url) as h:
        name = h.plan(strategy="full-outage")
        visit = next_poll(h, name)

        def board_edits() -> int:
            h.outbox.deliver()  # what is queued goes: a new change must queue a new edit
            with unit_of_work(h.sessions) as session:
                return int(session.scalar(
                    select(func.count()).select_from(OutboxMessage)
                    .where(OutboxMessage.run_id == visit.run_id,
                           OutboxMessage.kind == "update")) or 0)

        edits = board_edits()
        h.worker.visit(visit)  # polled again within the minute: the board is left alone
        assert board_edits() == edits
        h.clock.advance(61)
        for _ in range(100):  # the other clusters' steps come first, then this one again
            again = h.worker.claim(1)[0]
            if again.step_id == visit.step_id:
                break
            h.worker.visit(again)
        assert again.step_id == visit.step_id and again.ctx.kind == "wait_login"
        edits = board_edits()
        h.worker.visit(again)  # a minute on: the board's times are refreshed once
        assert board_edits() == edits + 1
        assert stored(h, visit.step_id).data[BOARD_AT] == h.clock.now().isoformat()
