"""The Slack outbox: idempotent enqueue, due messages, and integrity errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import unit_of_work
from storage.models import AuditEntry, OutboxMessage, SlackEvent
from storage.repo._shared import insert_or_find
from storage.repo.outbox import _message_by_key
from tests.storage.factories import T0, make_run


def test_the_same_key_enqueues_one_message(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        first = repo.enqueue_message(session=session, at=T0, payload={"text": "R1 started"},
                                     channel="C1", run_id=run.id, thread=True, key="R1:start")
    with unit_of_work(session_factory) as session:
        again = repo.enqueue_message(session=session, at=T0 + timedelta(seconds=5),
                                     payload={"text": "other"}, channel="C1", key="R1:start")
        assert again.id == first.id and again.payload == {"text": "R1 started"}
        repo.enqueue_message(session=session, at=T0, payload={"text": "no key"}, channel="C1")
        repo.enqueue_message(session=session, at=T0, payload={"text": "no key"}, channel="C1")
    with session_factory() as session:
        texts = [m.payload["text"] for m in repo.pending_messages(session=session, now=T0)]
        assert texts == ["R1 started", "no key", "no key"]


def test_a_key_enqueued_meanwhile_by_another_process_is_returned(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as other:
        repo.enqueue_message(session=other, at=T0, payload={"text": "theirs"}, channel="C1",
                             key="R1:plan")
    with unit_of_work(session_factory) as session:
        repo.audit(session=session, at=T0, actor="system", action="tick")
        # As if the look-up had raced: insert straight away and let the constraint decide.
        clash = OutboxMessage(channel="C1", kind="post", thread=False, key="R1:plan",
                              payload={"text": "mine"}, status="pending", attempts=0,
                              not_before=T0, created_at=T0)
        found = insert_or_find(session, clash, lambda: _message_by_key(session, "R1:plan"))
        assert found is not None and found.payload == {"text": "theirs"}
    with session_factory() as session:
        assert session.scalar(select(AuditEntry.action)) == "tick"  # the transaction survived
        assert len(repo.pending_messages(session=session, now=T0)) == 1


def test_messages_are_due_from_not_before_and_until_sent(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        later = repo.enqueue_message(session=session, at=T0 + timedelta(seconds=10),
                                     payload={"text": "later"}, channel="C1")
        now = repo.enqueue_message(session=session, at=T0, payload={"text": "now"},
                                   channel="C1", kind="update")
        sent = repo.enqueue_message(session=session, at=T0, payload={"text": "sent"},
                                    channel="C1")
        sent.status = "sent"
    with session_factory() as session:
        assert [m.id for m in repo.pending_messages(session=session, now=T0)] == [now.id]
        due = repo.pending_messages(session=session, now=T0 + timedelta(seconds=10))
        assert [m.id for m in due] == [later.id, now.id]
        assert len(repo.pending_messages(session=session, now=T0 + timedelta(1), limit=1)) == 1
    with pytest.raises(ValueError, match="unknown outbox kind"), \
            unit_of_work(session_factory) as session:
        repo.enqueue_message(session=session, at=T0, payload={"text": "x"}, channel="C1",
                             kind="shout")


def test_other_integrity_errors_are_not_mistaken_for_duplicates(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        with pytest.raises(IntegrityError):
            repo.enqueue_message(session=session, at=T0, payload={"text": "x"}, channel="C1",
                                 run_id=999, key="R999:plan")
        assert repo.record_event_id(session=session, event_id="Ev3", kind="reaction", at=T0)
    with session_factory() as session:
        assert session.get(SlackEvent, "Ev3") is not None
