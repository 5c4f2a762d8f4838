"""`/upgrade verify TARGET`: the final checks now, read-only, posted to the channel."""

from __future__ import annotations

from bot.flows.base import Flow
from bot.runs.checks import CheckResult, check_message, final_checks
from storage import repo
from storage.db import unit_of_work


class Checks(Flow):
    """Read-only checks anyone may ask for; the result is posted for everyone to see."""

    def verify(self, target: str, user: str, channel: str | None) -> CheckResult:
        """Read the target's clusters (no transaction open), then post and audit the result."""
        result = final_checks(self.settings, self.clients, target, self.clock.now())
        payload = check_message(result, heading=f"Asked by <@{user}>")
        with unit_of_work(self.sessions) as session:
            repo.enqueue_message(session=session, at=self.clock.now(), payload=payload,
                                 channel=self.settings.slack.channel or channel)
            repo.audit(session=session, at=self.clock.now(), actor=user, action="verify",
                       detail={"target": result.target, "ok": result.ok,
                               "summary": result.summary})
        return result
