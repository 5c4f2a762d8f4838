"""Reading runs: one run's steps, summaries for status, history, the Home tab and guards."""

from __future__ import annotations

from bot.engine.states import ACTIVE_RUN, APPROVABLE, RunStatus
from bot.flows.base import Flow
from bot.runs.views import AuditLine, RunSummary, audit_line, summarize
from storage import repo
from storage.db import unit_of_work


class Queries(Flow):
    """Read-only questions about runs (everyone may ask them)."""

    def run_status(self, ref: str | int) -> tuple[RunStatus, list[tuple[str, str, str]]]:
        """A run's status and its steps as (key, status, note) rows."""
        with unit_of_work(self.sessions) as session:
            run = self.find(session, ref)
            steps = repo.steps_of(session=session, run_id=run.id)
            return RunStatus(run.status), [(s.key, str(s.status), s.last_error or "")
                                           for s in steps]

    def summary(self, ref: str | int) -> RunSummary:
        """One run's summary; NoSuchRun when there is no such run."""
        with unit_of_work(self.sessions) as session:
            return summarize(self.find(session, ref))

    def run_for_message(self, channel: str, ts: str) -> RunSummary | None:
        """The run whose plan message is `ts` in `channel`, if any."""
        with unit_of_work(self.sessions) as session:
            run = repo.get_run_by_message(session=session, channel=channel, ts=ts)
            return summarize(run) if run is not None else None

    def is_message_of(self, run: RunSummary, channel: str, ts: str) -> bool:
        """Tell whether `ts` in `channel` is the run's plan message or one posted for it."""
        if run.channel == channel and run.message_ts == ts:
            return True
        with unit_of_work(self.sessions) as session:
            return repo.sent_by_run(session=session, run_id=run.id, channel=channel, ts=ts)

    def active_runs(self) -> list[RunSummary]:
        """Runs that are not over yet (awaiting approval to failed), newest first."""
        with unit_of_work(self.sessions) as session:
            return [summarize(r) for r in repo.list_runs(session=session, statuses=ACTIVE_RUN,
                                                         limit=50)]

    def history(self, target: str | None = None, limit: int = 10) -> list[RunSummary]:
        """The latest runs, of one supercluster or cluster (UnknownTarget if unknown)."""
        name = self.settings.target(target).name if target else None
        with unit_of_work(self.sessions) as session:
            return [summarize(r) for r in repo.list_runs(session=session, target=name,
                                                         limit=limit)]

    def awaiting_reactions(self) -> list[RunSummary]:
        """Posted plans that may still gain or lose approvals (re-read at start-up)."""
        with unit_of_work(self.sessions) as session:
            return [summarize(r) for r in repo.runs_with_plan_message(session=session,
                                                                      statuses=APPROVABLE)]

    def approvals(self, ref: str | int, kind: str = "approve") -> list[tuple[str, str]]:
        """The approvals that count now, as (user, source), oldest first."""
        with unit_of_work(self.sessions) as session:
            run = self.find(session, ref)
            return [(a.user_id, a.source) for a in repo.active_approvals(
                session=session, run_id=run.id, kind=kind)]

    def audit(self, ref: str | int) -> tuple[RunSummary, list[AuditLine]]:
        """A run and its whole audit trail, oldest first: approvals, state changes, controls."""
        with unit_of_work(self.sessions) as session:
            run = self.find(session, ref)
            steps = {s.id: s.key for s in repo.steps_of(session=session, run_id=run.id)}
            return summarize(run), [audit_line(e, steps)
                                    for e in repo.audit_trail(session=session, run_id=run.id)]
