"""The audit trail: who did what to a run, in time order."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import unit_of_work
from tests.storage.factories import T0, add_chain, make_run


def test_the_audit_trail_lists_a_runs_entries_in_time_order(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        (install,) = add_chain(session, run, ["install:dallas"])
        other = make_run(session)
        repo.audit(session=session, at=T0 + timedelta(seconds=2), actor="worker:w1",
                   action="step.started", run_id=run.id, step_id=install.id)
        repo.audit(session=session, at=T0, actor="U1", action="approved", run_id=run.id,
                   detail={"source": "reaction"})
        repo.audit(session=session, at=T0, actor="cli", action="paused", run_id=other.id)
    with session_factory() as session:
        trail = repo.audit_trail(session=session, run_id=run.id)
        assert [(e.actor, e.action, e.detail) for e in trail] == [
            ("U1", "approved", {"source": "reaction"}),
            ("worker:w1", "step.started", {}),
        ]
        assert trail[1].step_id == install.id
