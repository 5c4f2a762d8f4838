"""The files a run hands to people: its timeline picture and its evidence bundle."""

from __future__ import annotations

from bot.flows.base import Flow
from bot.runs.pictures import timeline_png
from storage.db import unit_of_work


class Reports(Flow):
    """Read-only: render a run's files from the database as it is now."""

    def timeline(self, ref: str | int) -> tuple[str, bytes]:
        """The run's name and its timeline picture (PNG)."""
        with unit_of_work(self.sessions) as session:
            run = self.find(session, ref)
            return run.name, timeline_png(
                session, run, self.clock.now(),
                max_parallel_installs=self.settings.timing.max_parallel_installs)
