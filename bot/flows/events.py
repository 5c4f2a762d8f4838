"""Slack's event ids: an event is handled once, whatever Slack retries."""

from __future__ import annotations

from datetime import timedelta

from bot.flows.base import Flow
from storage import repo
from storage.db import unit_of_work

KEEP_EVENT_IDS = timedelta(days=2)  # Slack retries for minutes; keep ids well over a day


class Events(Flow):
    """Remembers the Slack event ids already handled."""

    def first_time(self, event_id: str, kind: str) -> bool:
        """Record an event id; True the first time it is seen, False for a retry."""
        with unit_of_work(self.sessions) as session:
            return repo.record_event_id(session=session, event_id=event_id, kind=kind,
                                        at=self.clock.now())

    def forget_old(self) -> int:
        """Forget event ids older than two days; return how many were forgotten."""
        with unit_of_work(self.sessions) as session:
            return repo.purge_event_ids(session=session, before=self.clock.now() - KEEP_EVENT_IDS)
