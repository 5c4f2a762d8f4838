"""Checklist acknowledgements: which items of a run an operator has acknowledged, who and when.

Stored as approvals of kind `ack:<item>` (one person is enough per item); a run whose plan lists
items to acknowledge does not start until each is (bot/runs/waiting.py asks `missing`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from bot.engine.guide import CHECKLIST_SHORT
from bot.runs.plans import plan_of
from storage import repo
from storage.models import Approval, Run


def acknowledgements(session: Session, run: Run,
                     approvals: Mapping[str, Sequence[Approval]] | None = None) -> dict[str, str]:
    """Item key -> "by <@U> at 22:04 UTC", for the items acknowledged so far.

    `approvals` is the run's counting approvals by kind, when the caller has read them already.
    """
    if approvals is None:
        approvals = repo.active_approvals_by_kind(session=session, run_id=run.id)
    found: dict[str, str] = {}
    for key in plan_of(run).acknowledge:
        rows = approvals.get(f"ack:{key}")
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
