"""Status and kind columns: VARCHARs in the schema, StrEnum members in Python."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from bot.engine.states import ACTIVE_RUN, RunStatus, StepStatus
from storage import repo
from storage.db import unit_of_work
from storage.enums import ApprovalKind, OutboxKind, OutboxStatus, UnknownValue, label, member
from storage.models import Approval, OutboxMessage, Run, Step
from tests.storage.factories import T0, add_chain, make_run


def test_a_str_assigned_is_the_member_at_once() -> None:
    run = Run(status="running")
    assert run.status is RunStatus.RUNNING
    run.status = RunStatus.PAUSED.value  # what older callers write
    assert run.status is RunStatus.PAUSED
    # A StrEnum equals its value: comparisons written against strings keep working.
    assert run.status == "paused" and run.status == RunStatus.PAUSED.value
    assert Step(status="done").status is StepStatus.DONE
    assert Approval(kind="overrun").kind is ApprovalKind.OVERRUN
    message = OutboxMessage(kind="update", status="sending")
    assert (message.kind, message.status) == (OutboxKind.UPDATE, OutboxStatus.SENDING)
    assert type(message.kind) is OutboxKind and type(message.status) is OutboxStatus


def test_every_status_and_kind_reads_back_as_its_member(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run = make_run(session, status="awaiting_approval")
        (install,) = add_chain(session, run, ["install:dallas"])
        assert install.status is StepStatus.PENDING  # the column default is a member too
        repo.set_approval(session=session, run_id=run.id, user_id="U1", kind="reject",
                          source="button", event_id=None, at=T0)
        repo.enqueue_message(session=session, at=T0, payload={"text": "x"}, channel="C1",
                             run_id=run.id, kind="ephemeral")
    with session_factory() as session:
        loaded = session.get(Run, run.id)
        assert loaded is not None and type(loaded.status) is RunStatus
        assert loaded.status is RunStatus.AWAITING_APPROVAL and loaded.status in ACTIVE_RUN
        (step,) = repo.steps_of(session=session, run_id=run.id)
        assert type(step.status) is StepStatus and step.status is StepStatus.PENDING
        (vote,) = repo.active_approvals(session=session, run_id=run.id, kind="reject")
        assert vote.kind is ApprovalKind.REJECT
        (message,) = repo.pending_messages(session=session, now=T0)
        assert (message.kind, message.status) == (OutboxKind.EPHEMERAL, OutboxStatus.PENDING)
        assert type(message.kind) is OutboxKind and type(message.status) is OutboxStatus


def test_a_str_written_by_a_core_update_reads_back_as_the_member(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run_id = make_run(session).id
        session.execute(sa.update(Run).where(Run.id == run_id).values(status="paused"))
    with session_factory() as session:
        stored = session.scalar(sa.select(Run.status).where(Run.id == run_id))
        assert stored is RunStatus.PAUSED
        # In the database it is the bare value, as before the columns were typed.
        raw = session.scalar(sa.text("SELECT status FROM runs WHERE id = :id"), {"id": run_id})
        assert raw == "paused" and type(raw) is str


def test_an_unknown_value_is_refused_when_assigned() -> None:
    with pytest.raises(UnknownValue, match=r"unknown run status 'done'; expected one of: "
                                           r"planned, awaiting_approval"):
        Run(status="done")
    step = Step(status="pending")
    with pytest.raises(ValueError, match="unknown step status 'finished'"):
        step.status = "finished"
    assert step.status is StepStatus.PENDING
    with pytest.raises(UnknownValue, match="unknown outbox status 3"):
        OutboxMessage(status=3)


def test_an_unknown_value_in_the_database_is_reported_by_name(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        run_id = make_run(session).id
        # As if a newer version of the bot (or a hand edit) had written a status we don't know.
        session.execute(sa.text("UPDATE runs SET status = 'hibernating' WHERE id = :id"),
                        {"id": run_id})
    with session_factory() as session, pytest.raises(
            UnknownValue, match="unknown run status 'hibernating' read from the database"):
        repo.get_run(session=session, ref=run_id)


def test_a_query_for_an_unknown_value_is_refused_rather_than_finding_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, pytest.raises(
            StatementError, match="unknown run status 'done'"):
        repo.list_runs(session=session, statuses=["running", "done"])


def test_enum_helpers_name_the_enum_as_people_read_it() -> None:
    assert label(RunStatus) == "run status" and label(OutboxKind) == "outbox kind"
    assert member(StepStatus, StepStatus.ACTIVE) is StepStatus.ACTIVE
    assert member(StepStatus, "active") is StepStatus.ACTIVE
    error = UnknownValue(ApprovalKind, "veto")
    assert isinstance(error, ValueError) and (error.enum, error.value) == (ApprovalKind, "veto")
    assert str(error) == ("unknown approval kind 'veto'; expected one of: approve, reject, "
                          "overrun, ack:release-notes, ack:backup, ack:licence-keys")
