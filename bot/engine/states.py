"""The run and step state machines: one explicit transition table each (orquesta style).

Every status change of a run or a step goes through `next_run_status` / `next_step_status`, which
look the pair up in the table and raise `InvalidTransition` for anything the table does not list.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from bot.engine.errors import UserError


class Words(StrEnum):
    """A status or event that people read: `words` says it with spaces ("awaiting approval")."""

    @property
    def words(self) -> str:
        """The value as people read it, underscores as spaces."""
        return self.value.replace("_", " ")


class RunStatus(Words):
    """Where a run (one approved plan being carried out) stands."""

    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    ESCALATED = "escalated"
    AWAITING_OVERRUN = "awaiting_overrun"
    COMPLETED = "completed"
    ABORTED = "aborted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


class RunEvent(Words):
    """What can happen to a run."""

    SUBMIT = "submit"
    APPROVE = "approve"
    WITHDRAW = "withdraw"
    REJECT = "reject"
    EXPIRE = "expire"
    SCHEDULE = "schedule"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    ESCALATE = "escalate"
    RETRY = "retry"
    NEED_OVERRUN = "need_overrun"
    APPROVE_OVERRUN = "approve_overrun"
    COMPLETE = "complete"
    ABORT = "abort"
    FAIL = "fail"


class StepStatus(Words):
    """Where one step of a run stands."""

    PENDING = "pending"
    ACTIVE = "active"
    DONE = "done"
    SKIPPED = "skipped"
    BLOCKED = "blocked"  # needs an operator: drain timeout, licence keys
    ESCALATED = "escalated"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepEvent(Words):
    """What can happen to a step."""

    START = "start"
    FINISH = "finish"
    SKIP = "skip"
    BLOCK = "block"
    ESCALATE = "escalate"
    FAIL = "fail"
    RESUME = "resume"
    RETRY = "retry"
    CANCEL = "cancel"


_S_T = TypeVar("_S_T")
_E_T = TypeVar("_E_T")


def _freeze(table: dict[_S_T, dict[_E_T, _S_T]]) -> Mapping[_S_T, Mapping[_E_T, _S_T]]:
    return MappingProxyType({k: MappingProxyType(v) for k, v in table.items()})


_R, _E = RunStatus, RunEvent
RUN_TRANSITIONS: Mapping[RunStatus, Mapping[RunEvent, RunStatus]] = _freeze({
    _R.PLANNED: {_E.SUBMIT: _R.AWAITING_APPROVAL},
    _R.AWAITING_APPROVAL: {_E.APPROVE: _R.APPROVED, _E.REJECT: _R.REJECTED,
                           _E.EXPIRE: _R.EXPIRED, _E.ABORT: _R.ABORTED},
    # FAIL from approved/scheduled: the clusters no longer match the plan at start.
    _R.APPROVED: {_E.SCHEDULE: _R.SCHEDULED, _E.START: _R.RUNNING,
                  _E.WITHDRAW: _R.AWAITING_APPROVAL, _E.ABORT: _R.ABORTED, _E.FAIL: _R.FAILED},
    _R.SCHEDULED: {_E.START: _R.RUNNING, _E.WITHDRAW: _R.AWAITING_APPROVAL,
                   _E.EXPIRE: _R.EXPIRED, _E.ABORT: _R.ABORTED, _E.FAIL: _R.FAILED},
    _R.RUNNING: {_E.PAUSE: _R.PAUSED, _E.ESCALATE: _R.ESCALATED,
                 _E.NEED_OVERRUN: _R.AWAITING_OVERRUN, _E.COMPLETE: _R.COMPLETED,
                 _E.ABORT: _R.ABORTED, _E.FAIL: _R.FAILED},
    # A visit already under way when the run was held may still find a vendor condition or an
    # error: the run must then say so (escalated/failed), not resume over it.
    _R.PAUSED: {_E.RESUME: _R.RUNNING, _E.ABORT: _R.ABORTED, _E.ESCALATE: _R.ESCALATED,
                _E.FAIL: _R.FAILED},
    _R.ESCALATED: {_E.RETRY: _R.RUNNING, _E.ABORT: _R.ABORTED},
    _R.AWAITING_OVERRUN: {_E.APPROVE_OVERRUN: _R.RUNNING, _E.PAUSE: _R.PAUSED,
                          _E.ABORT: _R.ABORTED, _E.ESCALATE: _R.ESCALATED, _E.FAIL: _R.FAILED},
    _R.FAILED: {_E.RETRY: _R.RUNNING, _E.ABORT: _R.ABORTED},
    _R.COMPLETED: {},
    _R.ABORTED: {},
    _R.REJECTED: {},
    _R.EXPIRED: {},
})

def _accepting(*events: RunEvent) -> frozenset[RunStatus]:
    return frozenset(s for s, row in RUN_TRANSITIONS.items() if set(events) & set(row))


# The status groups, each defined once here and used everywhere (style.md 15).
# Runs that nothing can move any more: the table lists no way out of them.
TERMINAL_RUN: frozenset[RunStatus] = frozenset(s for s, row in RUN_TRANSITIONS.items() if not row)
# Runs that hold their target: at most one per supercluster or cluster. FAILED is here on
# purpose: a failed run may have left clusters busied out or outside the supercluster, so nothing
# else may touch the target until an operator retries or aborts it. PLANNED is a draft that holds
# nothing until it is submitted.
ACTIVE_RUN: frozenset[RunStatus] = frozenset(set(RunStatus) - TERMINAL_RUN - {_R.PLANNED})
# Runs where nothing runs until a person acts (resume, retry, approve the overrun).
HELD: frozenset[RunStatus] = frozenset({_R.PAUSED, _R.ESCALATED, _R.AWAITING_OVERRUN})
# Runs that have ended for now: their finish time is stamped (a failed run may still be retried).
ENDED_RUN: frozenset[RunStatus] = TERMINAL_RUN | {_R.FAILED}
# Where a driver of a run (rehearsal, tests) stops watching: ended, or waiting for a person.
STOPPED_RUN: frozenset[RunStatus] = ENDED_RUN | HELD
# Runs that may still gain or lose approvals: those the table lets approve or withdraw.
APPROVABLE: frozenset[RunStatus] = _accepting(_E.APPROVE, _E.WITHDRAW)
# Runs that wait for approval or for their window: the worker starts, schedules or expires them.
WAITING_RUN: frozenset[RunStatus] = _accepting(_E.START, _E.APPROVE)

_S, _SE = StepStatus, StepEvent
STEP_TRANSITIONS: Mapping[StepStatus, Mapping[StepEvent, StepStatus]] = _freeze({
    _S.PENDING: {_SE.START: _S.ACTIVE, _SE.SKIP: _S.SKIPPED, _SE.CANCEL: _S.CANCELLED},
    _S.ACTIVE: {_SE.FINISH: _S.DONE, _SE.BLOCK: _S.BLOCKED, _SE.ESCALATE: _S.ESCALATED,
                _SE.FAIL: _S.FAILED, _SE.CANCEL: _S.CANCELLED},
    _S.BLOCKED: {_SE.RESUME: _S.ACTIVE, _SE.CANCEL: _S.CANCELLED},
    _S.ESCALATED: {_SE.RETRY: _S.ACTIVE, _SE.CANCEL: _S.CANCELLED},
    _S.FAILED: {_SE.RETRY: _S.ACTIVE, _SE.CANCEL: _S.CANCELLED},
    _S.DONE: {},
    _S.SKIPPED: {},
    _S.CANCELLED: {},
})

# Steps that nothing can move any more (done, skipped, cancelled).
TERMINAL_STEP: frozenset[StepStatus] = frozenset(
    s for s, row in STEP_TRANSITIONS.items() if not row)
# Steps whose work is over: the steps after them may start, and a run whose steps are all here
# is complete. A cancelled step is terminal but not done: its run was aborted.
DONE_STEP: frozenset[StepStatus] = frozenset({_S.DONE, _S.SKIPPED})
# Steps a worker may claim: not started, or started and coming back to look again.
CLAIMABLE_STEP: frozenset[StepStatus] = frozenset({_S.PENDING, _S.ACTIVE})
# Steps stopped until a person acts (resume, retry).
STOPPED_STEP: frozenset[StepStatus] = frozenset({_S.BLOCKED, _S.ESCALATED, _S.FAILED})


class InvalidTransition(UserError):
    """An event that the current status does not allow."""

    def __init__(self, subject: str, status: Words, event: Words) -> None:
        super().__init__(f"{subject} is {status.words}; cannot {event.words}")
        self.subject = subject
        self.status = status
        self.event = event


def next_run_status(status: RunStatus, event: RunEvent, *, subject: str = "run") -> RunStatus:
    """Return the run's status after the event; raise InvalidTransition if not allowed."""
    try:
        return RUN_TRANSITIONS[RunStatus(status)][RunEvent(event)]
    except KeyError:
        raise InvalidTransition(subject, RunStatus(status), RunEvent(event)) from None


def next_step_status(status: StepStatus, event: StepEvent, *,
                     subject: str = "step") -> StepStatus:
    """Return the step's status after the event; raise InvalidTransition if not allowed."""
    try:
        return STEP_TRANSITIONS[StepStatus(status)][StepEvent(event)]
    except KeyError:
        raise InvalidTransition(subject, StepStatus(status), StepEvent(event)) from None


def run_may(status: RunStatus, event: RunEvent) -> bool:
    """Tell whether a run in this status accepts the event (ask the table, don't branch)."""
    return RunEvent(event) in RUN_TRANSITIONS[RunStatus(status)]


def step_may(status: StepStatus, event: StepEvent) -> bool:
    """Tell whether a step in this status accepts the event."""
    return StepEvent(event) in STEP_TRANSITIONS[StepStatus(status)]
