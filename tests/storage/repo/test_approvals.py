"""Approvals count once per person, and count again when given again after a withdrawal."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import unit_of_work
from tests.storage.factories import T0, make_run


def approvers(session: Session, run_id: int, kind: str = "approve") -> list[str]:
    return [a.user_id for a in repo.active_approvals(session=session, run_id=run_id, kind=kind)]


def test_an_approval_counts_once_per_person(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        run_id = make_run(session, status="planned").id
    with unit_of_work(session_factory) as session:
        assert repo.set_approval(session=session, run_id=run_id, user_id="U1", kind="approve",
                                 source="reaction", event_id="Ev1", at=T0)
        # The same person with a button, and a Slack retry of the reaction: no second vote.
        assert not repo.set_approval(session=session, run_id=run_id, user_id="U1",
                                     kind="approve", source="button", event_id=None, at=T0)
        assert not repo.set_approval(session=session, run_id=run_id, user_id="U1",
                                     kind="approve", source="reaction", event_id="Ev1", at=T0)
        assert repo.set_approval(session=session, run_id=run_id, user_id="U2", kind="approve",
                                 source="button", event_id=None, at=T0 + timedelta(seconds=1))
        # A rejection is a different kind: it does not count as an approval.
        assert repo.set_approval(session=session, run_id=run_id, user_id="U3", kind="reject",
                                 source="reaction", event_id="Ev2", at=T0)
    with session_factory() as session:
        assert approvers(session, run_id) == ["U1", "U2"]
        assert approvers(session, run_id, "reject") == ["U3"]


def test_a_withdrawn_approval_stops_counting_until_given_again(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run_id = make_run(session, status="planned").id
        repo.set_approval(session=session, run_id=run_id, user_id="U1", kind="approve",
                          source="reaction", event_id="Ev1", at=T0)
    with unit_of_work(session_factory) as session:
        assert repo.withdraw_approval(session=session, run_id=run_id, user_id="U1",
                                      kind="approve", at=T0 + timedelta(minutes=1))
        assert not repo.withdraw_approval(session=session, run_id=run_id, user_id="U1",
                                          kind="approve", at=T0 + timedelta(minutes=1))
        assert not repo.withdraw_approval(session=session, run_id=run_id, user_id="U9",
                                          kind="approve", at=T0)
        assert approvers(session, run_id) == []
    with unit_of_work(session_factory) as session:
        assert repo.set_approval(session=session, run_id=run_id, user_id="U1", kind="approve",
                                 source="button", event_id=None, at=T0 + timedelta(minutes=2))
    with session_factory() as session:
        (again,) = repo.active_approvals(session=session, run_id=run_id, kind="approve")
        assert (again.user_id, again.source, again.created_at) == (
            "U1", "button", T0 + timedelta(minutes=2))
