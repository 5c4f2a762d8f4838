"""The files a run hands to people: its timeline picture and its evidence bundle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.flows.base import Flow, ServiceError
from bot.flows.evidence import evidence_zip
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

    def evidence(self, ref: str | int) -> tuple[str, bytes]:
        """The run's name and its evidence bundle (zip)."""
        with unit_of_work(self.sessions) as session:
            run = self.find(session, ref)
            return run.name, evidence_zip(session, run, self.settings, self.clock.now())

    def render(self, spec: Mapping[str, Any]) -> bytes:
        """The file an upload message describes ({"what": "timeline"|"evidence", "run": …})."""
        what, ref = spec.get("what"), str(spec.get("run") or "")
        if what == "timeline":
            return self.timeline(ref)[1]
        if what == "evidence":
            return self.evidence(ref)[1]
        raise ServiceError(f"unknown file {what!r}: expected timeline or evidence")
