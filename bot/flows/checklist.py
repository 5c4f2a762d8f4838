"""Checklist acknowledgements: an operator confirms each manual item before a run may start."""

from __future__ import annotations

from bot.engine.guide import CHECKLIST_SHORT
from bot.engine.states import WAITING_RUN, RunEvent, RunStatus, run_may
from bot.flows.base import Flow, ServiceError
from bot.flows.planning import plan_payload
from bot.runs.checklist import missing
from bot.runs.plans import plan_of
from bot.runs.waiting import advance_waiting_run
from storage import repo
from storage.db import unit_of_work


class Checklist(Flow):
    """Acknowledge the release notes, the backup and the licence keys, one button each."""

    def acknowledge(self, ref: str | int, item: str, user: str) -> str:
        """Record who acknowledged an item and when; start the run when it was the last one."""
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            run = self.lock(session, ref)
            if item not in plan_of(run).acknowledge:
                raise ServiceError(f"{run.name} has no checklist item {item!r} to acknowledge "
                                   f"(items: {', '.join(plan_of(run).acknowledge) or 'none'})")
            if run.status not in WAITING_RUN:
                raise ServiceError(f"{run.name} is {RunStatus(run.status).words}: the checklist "
                                   "is acknowledged before the start")
            words = CHECKLIST_SHORT[item]
            if not repo.set_approval(session=session, run_id=run.id, user_id=user,
                                     kind=f"ack:{item}", source="button", event_id=None, at=now):
                return f"{run.name}: you already acknowledged {words}"
            repo.audit(session=session, at=now, actor=user, run_id=run.id,
                       action="checklist.acknowledged", detail={"item": item, "words": words})
            if not missing(session, run) and run_may(run.status, RunEvent.START):
                advance_waiting_run(session, run, now, user)  # approved: it may start now
            if run.status in WAITING_RUN:  # once started, the message is the board already
                repo.enqueue_message(session=session, at=now, channel=run.channel, run_id=run.id,
                                     kind="update",
                                     payload=plan_payload(session, run, self.settings.slack))
            return f"{run.name}: {words} acknowledged"
