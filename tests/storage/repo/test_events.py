"""Slack event de-duplication: an event id is handled once, and old ids are forgotten."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import unit_of_work
from storage.models import SlackEvent
from storage.repo._shared import insert_or_find
from tests.storage.factories import T0, make_run


def test_a_duplicate_event_id_is_refused_without_breaking_the_transaction(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        assert repo.record_event_id(session=session, event_id="Ev1", kind="reaction", at=T0)
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        assert not repo.record_event_id(session=session, event_id="Ev1", kind="reaction",
                                        at=T0)
        # Straight into the constraint, as when another process inserted it a moment ago.
        clash = SlackEvent(event_id="Ev1", kind="reaction", received_at=T0)
        assert insert_or_find(session, clash, lambda: session.get(SlackEvent, "Ev1"))
        assert repo.record_event_id(session=session, event_id="Ev2", kind="reaction", at=T0)
    with session_factory() as session:
        assert repo.get_run(session=session, ref=run.id) is not None
        assert session.get(SlackEvent, "Ev2") is not None


def test_old_event_ids_are_purged(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        for i in range(3):
            repo.record_event_id(session=session, event_id=f"Ev{i}", kind="reaction",
                                 at=T0 + timedelta(hours=i))
    with unit_of_work(session_factory) as session:
        assert repo.purge_event_ids(session=session, before=T0 + timedelta(hours=1)) == 1
        assert repo.record_event_id(session=session, event_id="Ev0", kind="reaction", at=T0)
        assert not repo.record_event_id(session=session, event_id="Ev1", kind="reaction", at=T0)
