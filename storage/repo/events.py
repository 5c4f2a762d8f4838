"""Slack event ids already handled: Slack retries an event with the same id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from storage.models import SlackEvent
from storage.repo._shared import insert_or_find


def record_event_id(*, session: Session, event_id: str, kind: str, at: datetime) -> bool:
    """Remember a Slack event id; True the first time, False for a retry or a duplicate."""
    if session.get(SlackEvent, event_id) is not None:
        return False
    row = SlackEvent(event_id=event_id, kind=kind, received_at=at)
    return insert_or_find(session, row, lambda: session.get(SlackEvent, event_id)) is None


def event_id_seen(*, session: Session, event_id: str) -> bool:
    """Tell whether an event id was recorded (its effect committed with it)."""
    return session.get(SlackEvent, event_id) is not None


def purge_event_ids(*, session: Session, before: datetime) -> int:
    """Forget event ids received before `before`; return how many were forgotten."""
    result = session.execute(delete(SlackEvent).where(SlackEvent.received_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
