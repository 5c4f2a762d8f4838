"""Checklist acknowledgements: which items of a run an operator has acknowledged, who and when.

Stored as approvals of kind `ack:<item>` (one person is enough per item); a run whose plan lists
items to acknowledge does not start until each is (bot/runs/waiting.py asks `missing`).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.engine.guide import CHECKLIST_SHORT
from bot.runs.plans import plan_of
from storage import repo
from storage.models import Run


def acknowledgements(session: Session, run: Run) -> dict[str, str]:
    """Item key -> "by <@U> at 22:04 UTC", for the items acknowledged so far."""
    found: dict[str, str] = {}
    for key in plan_of(run).acknowledge:
        rows = repo.active_approvals(session=session, run_id=run.id, kind=f"ack:{key}")
        if rows:
            first = rows[0]
            found[key] = f"by <@{first.user_id}> at {first.created_at:%H:%M} UTC"
    return found


def missing(session: Session, run: Run) -> list[str]:
    """The keys of the items still to acknowledge (empty when the run may start)."""
    done = acknowledgements(session, run)
    return [k for k in plan_of(run).acknowledge if k not in done]


def say_missing(keys: list[str]) -> str:
    """The items still to acknowledge, in short words."""
    return "; ".join(CHECKLIST_SHORT.get(k, k) for k in keys)
