"""Slack's event ids and request keys: each is handled once, whatever Slack retries or replays.

An event's id is recorded by the flow that acts on it, in the same unit of work as the effect
(`record_in`): a listener that fails leaves no id behind, and Slack's retry is let through.
A state-changing command or click is keyed by its trigger id and recorded before it is acted on
(`first_time`): Slack never retries those, so a second arrival is a replay.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.flows.base import Flow
from storage import repo
from storage.db import unit_of_work

KEEP_EVENT_IDS = timedelta(days=2)  # Slack retries for minutes; keep ids well over a day


class AlreadyHandled(Exception):
    """The event's effect was committed by an earlier delivery of it."""


def record_in(session: Session, event_id: str | None, kind: str, at: datetime) -> bool:
    """Record an event id in the caller's unit of work; False when it was already there."""
    return event_id is None or repo.record_event_id(session=session, event_id=event_id,
                                                    kind=kind, at=at)


class Events(Flow):
    """Remembers the Slack event ids already handled."""

    def first_time(self, event_id: str, kind: str) -> bool:
        """Record an event id; True the first time it is seen, False for a retry."""
        with unit_of_work(self.sessions) as session:
            return repo.record_event_id(session=session, event_id=event_id, kind=kind,
                                        at=self.clock.now())

    def seen(self, event_id: str) -> bool:
        """Tell whether an event's effect was already committed (read only)."""
        with unit_of_work(self.sessions) as session:
            return repo.event_id_seen(session=session, event_id=event_id)

    def forget_old(self) -> int:
        """Forget event ids older than two days; return how many were forgotten."""
        with unit_of_work(self.sessions) as session:
            return repo.purge_event_ids(session=session, before=self.clock.now() - KEEP_EVENT_IDS)
