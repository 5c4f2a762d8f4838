"""Approval by reaction on a plan message: add to approve or reject, remove to withdraw.

Guards (middleware) have already checked that the reaction is one of the two configured emoji on
a plan message (the run is in the context), that the person is not a bot, and resolved the
approvers; the services apply the rules (requester, approvers, once per person, not started).
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.services import HANDLED, ApprovalResult, RunSummary, Services
from bot.slack import answers
from bot.slack.middleware import load_reacted_run, with_approvers
from bot.slack.toolkit import Toolkit

# Reasons not worth a message: the person sees their reaction did what they meant.
QUIET = ("already counted", "no approval to withdraw", HANDLED)


class Reactions:
    """reaction_added / reaction_removed on plan messages."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def added(self, body: dict[str, Any], event: dict[str, Any], run: RunSummary,
              approvers: frozenset[str], client: WebClient) -> None:
        """Count an approval, or reject the plan."""
        user, slack = event["user"], self.services.settings.slack
        if event["reaction"] == slack.approve_reaction:
            result = self.services.approve(run.name, user, source="reaction",
                                           event_id=body.get("event_id"), approvers=approvers)
            self._tell(client, event, run, result, "approval")
        else:
            result = self.services.reject(run.name, user, source="reaction", approvers=approvers,
                                          event_id=body.get("event_id"))
            self._tell(client, event, run, result, "reject")

    def removed(self, body: dict[str, Any], event: dict[str, Any], run: RunSummary,
                client: WebClient) -> None:
        """Withdraw an approval while the run has not started."""
        if event["reaction"] == self.services.settings.slack.approve_reaction:
            result = self.services.withdraw(run.name, event["user"],
                                            event_id=body.get("event_id"))
            self._tell(client, event, run, result, "withdrawal")

    @staticmethod
    def _tell(client: WebClient, event: dict[str, Any], run: RunSummary, result: ApprovalResult,
              verb: str) -> None:
        if result.counted or result.reason in QUIET:
            return  # the plan message itself shows what counted
        text = answers.approval_answer(run, result, verb)["text"]
        client.chat_postEphemeral(channel=event["item"]["channel"], user=event["user"],
                                  text=text)


def register(app: App, services: Services, kit: Toolkit) -> None:
    """Register both reaction events behind the plan-message and approver guards."""
    reactions = Reactions(services)
    slack = services.settings.slack
    guards = [load_reacted_run(services, slack, kit.membership.client),
              with_approvers(slack, kit.membership)]
    app.event("reaction_added", middleware=guards)(reactions.added)
    app.event("reaction_removed", middleware=guards[:1])(reactions.removed)
