"""Start-up: re-read the reactions of every plan still open, so nothing given while down is lost.

For each run awaiting approval (or approved or scheduled, not started) whose plan message exists,
`reactions.get` says who reacts now. Reaction approvals that are gone are withdrawn, an approver's
reject reaction rejects, and new approve reactions are counted, through the same services (and
rules: requester, bots, approvers, once per person) as live events.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import RunSummary, Services
from bot.slack.membership import Membership

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconciled:
    """What one pass changed, and whether every plan could be read."""

    approved: int
    withdrawn: int
    rejected: int
    complete: bool


def reacting(reactions: Iterable[Mapping[str, Any]], name: str) -> list[str]:
    """The users who react with `name`, in Slack's order."""
    return next((list(r.get("users", [])) for r in reactions if r.get("name") == name), [])


class Reconciler:
    """Brings stored approvals in line with the reactions on the plan messages."""

    def __init__(self, services: Services, client: WebClient, membership: Membership) -> None:
        self.services = services
        self.client = client
        self.membership = membership

    def run(self) -> Reconciled:
        """Reconcile every open plan; `complete` is False when some could not be read."""
        totals = [0, 0, 0]
        complete = True
        for run in self.services.awaiting_reactions():
            try:
                message = self.client.reactions_get(channel=run.channel, timestamp=run.message_ts,
                                                    full=True)["message"]
            except (SlackApiError, OSError) as exc:
                log.warning("could not re-read the reactions of %s (%s); will try again",
                            run.name, type(exc).__name__)
                complete = False
                continue
            for i, n in enumerate(self._one(run, message.get("reactions") or [])):
                totals[i] += n
        result = Reconciled(approved=totals[0], withdrawn=totals[1], rejected=totals[2],
                            complete=complete)
        log.info("reactions re-read: %d approvals counted, %d withdrawn, %d rejections",
                 result.approved, result.withdrawn, result.rejected)
        return result

    def _one(self, run: RunSummary, reactions: list[Mapping[str, Any]]) -> tuple[int, int, int]:
        slack = self.services.settings.slack
        approvers = self.membership.expand(slack.approvers)
        approving = [u for u in reacting(reactions, slack.approve_reaction)
                     if not self.membership.is_bot(u)]
        rejecting = [u for u in reacting(reactions, slack.reject_reaction)
                     if u in approvers and not self.membership.is_bot(u)]
        counted = dict(self.services.approvals(run.name))
        withdrawn = sum(self.services.withdraw(run.name, user).counted
                        for user, source in counted.items()
                        if source == "reaction" and user not in approving)
        if rejecting:  # a rejection given while down ends the plan, whatever else was given
            result = self.services.reject(run.name, rejecting[0], source="reaction",
                                          approvers=approvers)
            return 0, withdrawn, int(result.counted)
        approved = sum(self.services.approve(run.name, user, source="reaction",
                                             approvers=approvers).counted
                       for user in approving if user not in counted)
        return approved, withdrawn, 0
