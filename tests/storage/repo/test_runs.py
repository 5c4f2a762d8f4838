"""Runs: naming, listing, optimistic locking."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from storage import repo
from storage.db import unit_of_work
from tests.storage.factories import T0, make_run


def test_a_run_is_found_by_any_spelling_of_its_name(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        make_run(session)
        run = make_run(session)
    assert run.name == f"R{run.id}"
    with session_factory() as session:
        for ref in (run.id, str(run.id), f"R{run.id}", f"r{run.id}", f" R{run.id} "):
            found = repo.get_run(session=session, ref=ref)
            assert found is not None and found.id == run.id, ref
        for ref in ("R", "Rx", "run12", "R-1", 0, "R0", "R999"):
            assert repo.get_run(session=session, ref=ref) is None, ref


def test_runs_are_listed_newest_first_and_filtered(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        first = make_run(session, target="global", status="completed")
        second = make_run(session, target="lab", status="running")
        third = make_run(session, target="global", status="running")
    with session_factory() as session:
        assert [r.id for r in repo.list_runs(session=session)] == [third.id, second.id, first.id]
        assert [r.id for r in repo.list_runs(session=session, target="global")] == [
            third.id, first.id]
        running = repo.list_runs(session=session, statuses=["running"], limit=1)
        assert [r.id for r in running] == [third.id]


def test_the_second_of_two_racing_changes_to_a_run_is_refused(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run_id = make_run(session, status="planned").id
    alice, bob = session_factory(), session_factory()
    try:
        alices_run = repo.get_run(session=alice, ref=run_id)
        bobs_run = repo.get_run(session=bob, ref=run_id)
        assert alices_run is not None and bobs_run is not None
        alices_run.status, alices_run.updated_at = "approved", T0
        alice.commit()
        bobs_run.status = "rejected"
        with pytest.raises(StaleDataError):
            bob.commit()
    finally:
        alice.close()
        bob.close()
    with session_factory() as session:
        final = repo.get_run(session=session, ref=run_id)
        assert final is not None and (final.status, final.version_id) == ("approved", 2)
