"""What a run posts: thread replies, and the status board that the plan message becomes.

Both are queued in the outbox inside the caller's unit of work: a Slack outage never blocks a
step, and a message is sent exactly when the change it reports is committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.outbox import BOARD
from bot.runs.board import board_payload
from storage import repo
from storage.models import Run


def post(session: Session, run: Run, payload: Mapping[str, Any], now: datetime,
         key: str | None = None) -> None:
    """Queue a reply in the run's thread (delivered by the outbox, never blocking a step)."""
    repo.enqueue_message(session=session, at=now, payload=dict(payload), channel=run.channel,
                         run_id=run.id, kind="post", thread=True, key=key)


# The files a run can upload: what -> (file name suffix, title words).
FILES: Mapping[str, tuple[str, str]] = {
    "timeline": ("timeline.png", "timeline"), "evidence": ("evidence.zip", "evidence bundle")}


def upload(session: Session, run: Run, what: str, now: datetime, *, comment: str,
           key: str | None = None) -> None:
    """Queue a file for the run's thread; the outbox renders it when it delivers it."""
    suffix, words = FILES[what]
    spec = {"what": what, "run": run.name, "filename": f"{run.name}-{suffix}",
            "title": f"{run.name} {words}"}
    repo.enqueue_message(session=session, at=now, payload={"text": comment, "file": spec},
                         channel=run.channel, run_id=run.id, kind="upload", thread=True,
                         key=key)


def update_board(session: Session, run: Run, now: datetime) -> None:
    """Queue an edit of the plan message into the status board, drawn when it is delivered.

    The outbox coalesces edits (only the newest of a run goes), so the board is drawn once per
    edit sent, from the state at that moment, not once per change. When the newest edit still
    waiting is already a board, it will show this change too: nothing more is queued.
    """
    queue_board(session, run.id, run.channel, now)


def queue_board(session: Session, run_id: int, channel: str | None, now: datetime) -> None:
    """`update_board` for a caller that holds the run's id and channel, not the run."""
    waiting = repo.newest_unsent_edit(session=session, run_id=run_id)
    if waiting is not None and BOARD in waiting:
        return
    repo.enqueue_message(session=session, at=now, payload={BOARD: run_id}, channel=channel,
                         run_id=run_id, kind="update")


def render_board(session: Session, run_id: int, now: datetime) -> dict[str, Any] | None:
    """The status board of a run as it stands now (None if the run is gone)."""
    run = session.get(Run, run_id)
    return None if run is None else board_payload(session, run, now)
