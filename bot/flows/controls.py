"""Run controls: pause, resume, abort, retry, and approving an overrun of the window."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy.orm import Session

from bot import messages
from bot.engine.impact import ServiceImpact
from bot.engine.plans import StepKind
from bot.engine.states import (
    ACTIVE_RUN,
    TERMINAL_STEP,
    RunEvent,
    RunStatus,
    StepEvent,
    StepStatus,
    run_may,
    step_may,
)
from bot.flows.base import Flow, ServiceError
from bot.flows.reinstall import candidates, offer, reinstall, rolled_back_by_hand
from bot.runs.escalations import acknowledge
from bot.runs.posting import post, update_board
from bot.runs.readings import clusters_of, impact_now
from bot.runs.transitions import transition_run, transition_step
from storage import repo
from storage.db import unit_of_work
from storage.models import Run

log = logging.getLogger(__name__)
Control = Callable[[Session, Run, str, datetime], str]
# The control each word asks for, and the run event that decides whether it is allowed now.
EVENTS = {"pause": RunEvent.PAUSE, "resume": RunEvent.RESUME, "abort": RunEvent.ABORT,
          "retry": RunEvent.RETRY, "reinstall": RunEvent.RETRY,
          "overrun": RunEvent.APPROVE_OVERRUN}


class Controls(Flow):
    """What operators (and, for overruns, approvers) do to a run under way."""

    def control(self, ref: str | int, action: str, user: str, *,
                approvers: Collection[str] | None = None) -> str:
        """Pause, resume, abort, retry or approve an overrun; return what happened.

        `approvers` (user ids, groups already expanded) decides who may approve an overrun;
        by default the configured list.
        """
        allowed = set(approvers if approvers is not None else self.settings.slack.approvers)
        controls: dict[str, Control] = {
            "pause": self._pause, "resume": self._resume, "abort": self._abort,
            "retry": self._retry, "reinstall": self._retry,
            "overrun": lambda s, r, u, n: self._overrun(s, r, u, n, allowed=allowed)}
        if action not in controls:
            raise ServiceError(f"unknown action {action!r}; expected one of: "
                               + ", ".join(controls))
        if action == "abort":  # read before the lock: the notice states the service impact
            impact = self._impact(ref)
            controls["abort"] = lambda s, r, u, n: self._abort(s, r, u, n, impact=impact)
        if action in ("retry", "reinstall"):  # a cluster rolled back by hand is not re-verified
            found = self._rolled_back_by_hand(ref)
            controls["retry"] = (lambda s, r, u, n: offer(s, r, u, n, found)) if found \
                else self._retry
            controls["reinstall"] = lambda s, r, u, n: self._reinstall(s, r, u, n, found)
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            run = self.lock(session, ref)
            self._need(run, EVENTS[action])
            if action in ("resume", "retry", "reinstall"):
                _refuse_while_recovering(session, run)
            text = controls[action](session, run, user, now)
            repo.audit(session=session, at=now, actor=user, run_id=run.id,
                       action=f"operator.{action}")
            update_board(session, run, now)
            return text

    def acknowledge(self, ref: str | int, user: str) -> str:
        """Acknowledge a run's open escalations: the reminders stop; who and when is kept."""
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            run = self.lock(session, ref)
            fresh = acknowledge(session, run, user, now)
            if fresh:
                return (f"{run.name}: escalation on {', '.join(e.cluster for e in fresh)} "
                        "acknowledged; the on-call group is not reminded any more")
            earlier = [e for e in repo.open_escalations(session=session, run_id=run.id)
                       if e.acknowledged_by]
            if earlier:
                return (f"{run.name}: already acknowledged by "
                        f"{messages.mention(earlier[0].acknowledged_by or '')}")
            raise ServiceError(f"{run.name} has no open escalation to acknowledge")

    @staticmethod
    def _need(run: Run, event: RunEvent) -> None:
        """Refuse a control the transition table does not allow for the run's status."""
        if run_may(run.status, event) or event is RunEvent.ABORT:
            return  # an abort the table refuses is refused by the transition itself
        allowed = [s.words for s in RunStatus if run_may(s, event)]
        raise ServiceError(f"{run.name} is {RunStatus(run.status).words}; expected it "
                           + " or ".join(allowed))

    def _pause(self, session: Session, run: Run, user: str, now: datetime) -> str:
        transition_run(session, run, RunEvent.PAUSE, now=now, actor=user)
        run.pause_reason = f"paused by {user}"
        post(session, run, messages.notice(
            run.name, "⏸️", f"paused by {messages.mention(user)}; a step already under way on "
            "a cluster finishes there, nothing new starts", actions=("resume", "abort")), now)
        return f"{run.name} paused"

    def _resume(self, session: Session, run: Run, user: str, now: datetime) -> str:
        for step in repo.steps_of(session=session, run_id=run.id):
            if step.status == StepStatus.BLOCKED:
                transition_step(session, step, StepEvent.RESUME, now=now, actor=user)
                step.data = {**(step.data or {}), "resumed": True, "resumed_by": user}
                step.next_check_at = None
        transition_run(session, run, RunEvent.RESUME, now=now, actor=user)
        run.pause_reason = None
        post(session, run, messages.notice(
            run.name, "▶️", f"resumed by {messages.mention(user)}"), now)
        return f"{run.name} resumed"

    def _retry(self, session: Session, run: Run, user: str, now: datetime) -> str:
        for step in repo.steps_of(session=session, run_id=run.id):
            if step_may(step.status, StepEvent.RETRY):  # escalated or failed
                if step.status == StepStatus.FAILED or step.kind == StepKind.JOIN:
                    # Re-read the cluster from the start of the step: a failed request, or a
                    # failed join, is sent again only if the cluster still needs it.
                    step.phase = None
                transition_step(session, step, StepEvent.RETRY, now=now, actor=user)
                kept = {k: v for k, v in (step.data or {}).items()
                        if k not in ("apply_tries", "overdue")}
                step.data = {**kept, "retry_at": now.isoformat()}
                step.next_check_at = None
                step.last_error = None
        repo.resolve_escalations(session=session, run_id=run.id, at=now, by=user)
        transition_run(session, run, RunEvent.RETRY, now=now, actor=user)
        run.pause_reason = None
        post(session, run, messages.notice(
            run.name, "🔁", f"{messages.mention(user)} asked to verify again"), now)
        return f"{run.name}: verifying again"

    def _abort(self, session: Session, run: Run, user: str, now: datetime, *,
               impact: ServiceImpact | None = None) -> str:
        for step in repo.steps_of(session=session, run_id=run.id):
            if step.status not in TERMINAL_STEP:
                transition_step(session, step, StepEvent.CANCEL, now=now, actor=user)
        transition_run(session, run, RunEvent.ABORT, now=now, actor=user)
        service = ("\nService now:\n" + "\n".join(f"  {line}" for line in impact.lines())
                   if impact else "")
        post(session, run, messages.notice(
            run.name, "⏹️", f"aborted by {messages.mention(user)}. Clusters stay as they are "
            f"now; an install already under way finishes on its cluster.{service}\n"
            "Ways on: " + "; ".join(messages.ways_on(run.name, aborted=True)) + "."), now)
        return f"{run.name} aborted"

    def _rolled_back_by_hand(self, ref: str | int) -> dict[str, str]:
        with unit_of_work(self.sessions) as session:
            run = repo.get_run(session=session, ref=ref)
            if run is None:
                return {}
            target, before = candidates(session, run)
        return rolled_back_by_hand(target, before, self.clients)

    def _reinstall(self, session: Session, run: Run, user: str, now: datetime,
                   found: dict[str, str]) -> str:
        if not found:
            raise ServiceError(f"no cluster of {run.name} is back on the version it was "
                               f"upgraded from: `/upgrade retry {run.name}` verifies again")
        text = reinstall(session, run, user, now, found)
        transition_run(session, run, RunEvent.RETRY, now=now, actor=user)
        run.pause_reason = None
        return text

    def _impact(self, ref: str | int) -> ServiceImpact | None:
        """The service impact of the run's clusters now (None for an unknown run)."""
        with unit_of_work(self.sessions) as session:
            run = repo.get_run(session=session, ref=ref)
            if run is None:
                return None
            names = clusters_of(run, [c.name for c in self.settings.all_clusters()])
            superclustered = run.target_kind == "supercluster"
        known = {c.name: c.servers for c in self.settings.all_clusters()}
        try:
            return impact_now(self.clients, {n: known.get(n, 2) for n in names},
                              superclustered=superclustered)
        except Exception:  # an abort must never fail because the impact could not be read
            log.exception("could not read the service impact of %s", names)
            return None

    def _overrun(self, session: Session, run: Run, user: str, now: datetime, *,
                 allowed: set[str]) -> str:
        if user not in allowed:
            raise ServiceError("only configured approvers can approve an overrun")
        repo.set_approval(session=session, run_id=run.id, user_id=user, kind="overrun",
                          source="cli", event_id=None, at=now)
        run.overrun_approved = True
        transition_run(session, run, RunEvent.APPROVE_OVERRUN, now=now, actor=user)
        post(session, run, messages.notice(
            run.name, "⏱️", f"overrun approved by {messages.mention(user)}; going on"), now)
        return f"{run.name}: overrun approved"


def _refuse_while_recovering(session: Session, run: Run) -> None:
    """A run whose clusters a recovery run is working on may not move them too."""
    for other in repo.list_runs(session=session, statuses=ACTIVE_RUN, limit=500):
        if other.recovers == run.id:
            raise ServiceError(f"{other.name} ({other.strategy} of {other.target}) recovers "
                               f"{run.name} and is {RunStatus(other.status).words}: let it "
                               f"finish, or `/upgrade abort {other.name}` first")
