"""A run's steps: plan order, fields, and changes inside their JSON data."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import unit_of_work
from tests.storage.factories import make_run, step


def test_steps_keep_their_plan_order_and_fields(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        repo.add_steps(session=session, run=run, steps=[
            step("verify:dallas", 2, deps=["install:dallas"], safe_point=True),
            step("install:dallas", 1, params={"package": "10.1.0.1"}),
        ])
    with session_factory() as session:
        steps = repo.steps_of(session=session, run_id=run.id)
        assert [s.key for s in steps] == ["install:dallas", "verify:dallas"]
        install, verify = steps
        assert (install.kind, install.cluster, install.status) == ("install", "dallas", "pending")
        assert install.params == {"package": "10.1.0.1"} and install.data == {}
        assert verify.deps == ["install:dallas"] and verify.safe_point
        assert install.attempts == 0 and install.claimed_by is None


def test_a_change_inside_step_data_is_saved(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session)
        repo.add_steps(session=session, run=run, steps=[step("install:dallas", 1)])
    with unit_of_work(session_factory) as session:
        loaded = repo.steps_of(session=session, run_id=run.id)[0]
        loaded.data["operation_id"] = "op-7"
    with session_factory() as session:
        assert repo.steps_of(session=session, run_id=run.id)[0].data == {"operation_id": "op-7"}
