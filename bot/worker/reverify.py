"""The re-verification of completed runs: once, `timing.reverify_after` after the end.

Claimed by marking it done before the clusters are read (SKIP LOCKED on PostgreSQL), so two
processes never post it twice; a process that dies while reading loses that one re-check, and
the run's thread simply shows none (the final check at the end of the run stands).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.dma.client import DmaClient
from bot.engine.errors import UserError
from bot.runs.checks import check_message, final_checks
from bot.runs.posting import post
from storage import repo
from storage.db import unit_of_work
from storage.models import Run

log = logging.getLogger(__name__)


def reverify_due(sessions: sessionmaker[Session], settings: Settings,
                 clients: Callable[[str], DmaClient], clock: Clock, actor: str) -> int:
    """Run the re-verifications that are due; return how many were posted."""
    now = clock.now()
    with unit_of_work(sessions) as session:
        due = []
        for item in repo.due_reverifications(session=session, now=now):
            item.done_at = now
            run = session.get(Run, item.run_id)
            if run is not None:
                due.append((item.id, run.id, run.target))
    for item_id, run_id, target in due:
        try:
            result = final_checks(settings, clients, target, clock.now())
        except UserError as exc:  # the target left the inventory since the run
            log.warning("re-verification of run %s skipped: %s", run_id, exc)
            continue
        except Exception:  # a bug must not stop the worker's steps; it is marked done already
            log.exception("re-verification of run %s failed", run_id)
            continue
        with unit_of_work(sessions) as session:
            run = session.get(Run, run_id)
            if run is None:
                continue
            record = repo.reverification_of(session=session, run_id=run_id)
            if record is not None and record.id == item_id:
                record.ok, record.summary = result.ok, result.summary
            after = settings.timing.reverify_after
            post(session, run, check_message(
                result, heading=f"{run.name} re-verification, {_hours(after.total_seconds())} "
                                "after the end", tz=run.window_tz or "UTC"), clock.now())
            repo.audit(session=session, at=clock.now(), actor=actor, action="reverify",
                       run_id=run_id, detail={"ok": result.ok, "summary": result.summary})
    return len(due)


def _hours(seconds: float) -> str:
    from bot.engine.durations import say_duration

    return say_duration(seconds)
