"""The run and step state machines, tested as tables: every listed move, and nothing else."""

from __future__ import annotations

import itertools

import pytest

from bot.engine.states import (
    ACTIVE_RUN,
    HELD,
    RUN_TRANSITIONS,
    STEP_TRANSITIONS,
    TERMINAL_RUN,
    TERMINAL_STEP,
    InvalidTransition,
    RunEvent,
    RunStatus,
    StepEvent,
    StepStatus,
    next_run_status,
    next_step_status,
)

R, E = RunStatus, RunEvent
S, SE = StepStatus, StepEvent

# The brief's table, written out independently of the module's.
EXPECTED_RUN = {
    (R.PLANNED, E.SUBMIT): R.AWAITING_APPROVAL,
    (R.AWAITING_APPROVAL, E.APPROVE): R.APPROVED,
    (R.AWAITING_APPROVAL, E.REJECT): R.REJECTED,
    (R.AWAITING_APPROVAL, E.EXPIRE): R.EXPIRED,
    (R.AWAITING_APPROVAL, E.ABORT): R.ABORTED,
    (R.APPROVED, E.SCHEDULE): R.SCHEDULED,
    (R.APPROVED, E.START): R.RUNNING,
    (R.APPROVED, E.WITHDRAW): R.AWAITING_APPROVAL,
    (R.APPROVED, E.ABORT): R.ABORTED,
    (R.APPROVED, E.FAIL): R.FAILED,
    (R.SCHEDULED, E.START): R.RUNNING,
    (R.SCHEDULED, E.WITHDRAW): R.AWAITING_APPROVAL,
    (R.SCHEDULED, E.EXPIRE): R.EXPIRED,
    (R.SCHEDULED, E.ABORT): R.ABORTED,
    (R.SCHEDULED, E.FAIL): R.FAILED,
    (R.RUNNING, E.PAUSE): R.PAUSED,
    (R.RUNNING, E.ESCALATE): R.ESCALATED,
    (R.RUNNING, E.NEED_OVERRUN): R.AWAITING_OVERRUN,
    (R.RUNNING, E.COMPLETE): R.COMPLETED,
    (R.RUNNING, E.ABORT): R.ABORTED,
    (R.RUNNING, E.FAIL): R.FAILED,
    (R.PAUSED, E.RESUME): R.RUNNING,
    (R.PAUSED, E.ABORT): R.ABORTED,
    (R.PAUSED, E.ESCALATE): R.ESCALATED,
    (R.PAUSED, E.FAIL): R.FAILED,
    (R.ESCALATED, E.RETRY): R.RUNNING,
    (R.ESCALATED, E.ABORT): R.ABORTED,
    (R.AWAITING_OVERRUN, E.APPROVE_OVERRUN): R.RUNNING,
    (R.AWAITING_OVERRUN, E.PAUSE): R.PAUSED,
    (R.AWAITING_OVERRUN, E.ABORT): R.ABORTED,
    (R.AWAITING_OVERRUN, E.ESCALATE): R.ESCALATED,
    (R.AWAITING_OVERRUN, E.FAIL): R.FAILED,
    (R.FAILED, E.RETRY): R.RUNNING,
    (R.FAILED, E.ABORT): R.ABORTED,
}

EXPECTED_STEP = {
    (S.PENDING, SE.START): S.ACTIVE,
    (S.PENDING, SE.SKIP): S.SKIPPED,
    (S.PENDING, SE.CANCEL): S.CANCELLED,
    (S.ACTIVE, SE.FINISH): S.DONE,
    (S.ACTIVE, SE.BLOCK): S.BLOCKED,
    (S.ACTIVE, SE.ESCALATE): S.ESCALATED,
    (S.ACTIVE, SE.FAIL): S.FAILED,
    (S.ACTIVE, SE.CANCEL): S.CANCELLED,
    (S.BLOCKED, SE.RESUME): S.ACTIVE,
    (S.BLOCKED, SE.CANCEL): S.CANCELLED,
    (S.ESCALATED, SE.RETRY): S.ACTIVE,
    (S.ESCALATED, SE.CANCEL): S.CANCELLED,
    (S.FAILED, SE.RETRY): S.ACTIVE,
    (S.FAILED, SE.CANCEL): S.CANCELLED,
}


def test_statuses_are_stored_as_lower_snake_words() -> None:
    assert R.AWAITING_APPROVAL == "awaiting_approval"
    assert E.APPROVE_OVERRUN == "approve_overrun"
    assert all(s.value == s.name.lower() for s in [*R, *E, *S, *SE])


@pytest.mark.parametrize(("status", "event"), list(itertools.product(R, E)))
def test_every_run_status_and_event_pair(status: RunStatus, event: RunEvent) -> None:
    if (status, event) in EXPECTED_RUN:
        assert next_run_status(status, event) is EXPECTED_RUN[(status, event)]
    else:
        with pytest.raises(InvalidTransition):
            next_run_status(status, event)


@pytest.mark.parametrize(("status", "event"), list(itertools.product(S, SE)))
def test_every_step_status_and_event_pair(status: StepStatus, event: StepEvent) -> None:
    if (status, event) in EXPECTED_STEP:
        assert next_step_status(status, event) is EXPECTED_STEP[(status, event)]
    else:
        with pytest.raises(InvalidTransition):
            next_step_status(status, event)


def test_the_tables_list_nothing_more() -> None:
    listed_runs = {(s, e): t for s, row in RUN_TRANSITIONS.items() for e, t in row.items()}
    listed_steps = {(s, e): t for s, row in STEP_TRANSITIONS.items() for e, t in row.items()}
    assert listed_runs == EXPECTED_RUN
    assert listed_steps == EXPECTED_STEP
    assert set(RUN_TRANSITIONS) == set(R) and set(STEP_TRANSITIONS) == set(S)


def test_terminal_statuses_have_no_way_out() -> None:
    for status in TERMINAL_RUN:
        assert not RUN_TRANSITIONS[status]
    for step in TERMINAL_STEP:
        assert not STEP_TRANSITIONS[step]
    # ...and everything else can still move.
    assert all(RUN_TRANSITIONS[s] for s in set(R) - TERMINAL_RUN)


def test_groups() -> None:
    # A failed run still holds its target until someone retries or aborts it.
    assert R.FAILED in ACTIVE_RUN and R.FAILED not in TERMINAL_RUN
    assert not ACTIVE_RUN & TERMINAL_RUN
    assert set(R) - {R.PLANNED} == ACTIVE_RUN | TERMINAL_RUN
    assert {R.PAUSED, R.ESCALATED, R.AWAITING_OVERRUN} == HELD
    assert HELD <= ACTIVE_RUN


def test_a_refused_transition_names_the_status_and_the_event() -> None:
    with pytest.raises(InvalidTransition, match=r"^run R7 is completed; cannot pause$") as caught:
        next_run_status(R.COMPLETED, E.PAUSE, subject="run R7")
    assert caught.value.status is R.COMPLETED and caught.value.event is E.PAUSE
    with pytest.raises(InvalidTransition, match="is awaiting approval; cannot approve overrun"):
        next_run_status(R.AWAITING_APPROVAL, E.APPROVE_OVERRUN)
    with pytest.raises(InvalidTransition, match=r"^step install:dallas is done; cannot retry$"):
        next_step_status(S.DONE, SE.RETRY, subject="step install:dallas")


def test_statuses_read_back_from_the_database_as_strings_work() -> None:
    assert next_run_status("running", "pause") is R.PAUSED  # type: ignore[arg-type]
