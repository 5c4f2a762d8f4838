"""The files a run hands to people: its timeline picture and its evidence bundle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.flows.base import Flow, ServiceError
from bot.flows.evidence import evidence_zip
from bot.runs.pictures import timeline_png
from bot.runs.posting import render_board, upload
from storage import repo
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

    def board(self, run_id: int) -> dict[str, Any] | None:
        """The run's status board drawn now, for an edit being delivered (None: run gone)."""
        with unit_of_work(self.sessions) as session:
            return render_board(session, run_id, self.clock.now())

    def request_evidence(self, ref: str | int, user: str) -> str:
        """Queue the evidence bundle for the run's thread (rendered when delivered)."""
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            run = self.find(session, ref)
            if not run.channel:
                raise ServiceError(f"{run.name} has no thread to upload to; use "
                                   f"`upgradebot evidence {run.name} -o {run.name}.zip`")
            upload(session, run, "evidence", now,
                   comment=f"{run.name} evidence bundle, asked for by <@{user}>")
            repo.audit(session=session, at=now, actor=user, action="evidence",
                       run_id=run.id)
            return run.name
