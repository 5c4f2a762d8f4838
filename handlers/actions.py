"""Buttons: Approve/Reject a plan, approve an overrun, retry, resume or abort a run.

Middleware loads the run the button names (its value is a RunRef) and checks the role:
approvers for the approval buttons, operators for the others (a refusal is answered privately).
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.services import RunSummary, Services
from bot.slack import answers
from bot.slack.blocks import ephemeral
from bot.slack.middleware import load_button_run, require_operator, with_approvers
from bot.slack.toolkit import Toolkit
from handlers.slack_ids import ActionId

CONTROLS = {ActionId.RETRY: "retry", ActionId.RESUME: "resume", ActionId.ABORT: "abort"}


class Actions:
    """One method per kind of button."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def approve(self, ack: Ack, body: dict[str, Any], run: RunSummary,
                approvers: frozenset[str], respond: Respond) -> None:
        """The Approve button: counts like the approve reaction."""
        ack()
        result = self.services.approve(run.name, body["user"]["id"], source="button",
                                        approvers=approvers)
        respond(**answers.approval_answer(run, result, "approval"), replace_original=False)

    def reject(self, ack: Ack, body: dict[str, Any], run: RunSummary,
               approvers: frozenset[str], respond: Respond) -> None:
        """The Reject button: an approver's rejection ends the plan."""
        ack()
        result = self.services.reject(run.name, body["user"]["id"], source="button",
                                      approvers=approvers)
        respond(**answers.approval_answer(run, result, "reject"), replace_original=False)

    def overrun(self, ack: Ack, body: dict[str, Any], run: RunSummary,
                approvers: frozenset[str], respond: Respond) -> None:
        """Approve overrunning the window (approvers)."""
        ack()
        text = self.services.control(run.name, "overrun", body["user"]["id"],
                                     approvers=approvers)
        respond(**ephemeral(text), replace_original=False)

    def control(self, ack: Ack, body: dict[str, Any], action: dict[str, Any], run: RunSummary,
                respond: Respond) -> None:
        """Retry verification, resume or abort (operators)."""
        ack()
        verb = CONTROLS[ActionId(action["action_id"])]
        text = self.services.control(run.name, verb, body["user"]["id"])
        respond(**ephemeral(text), replace_original=False)


def register(app: App, services: Services, kit: Toolkit) -> None:
    """Register every button behind its guards."""
    handlers = Actions(services)
    slack = services.settings.slack
    approver = [load_button_run(services), with_approvers(slack, kit.membership)]
    operator = [require_operator(slack, kit.membership), load_button_run(services)]
    app.action(ActionId.APPROVE.value, middleware=approver)(handlers.approve)
    app.action(ActionId.REJECT.value, middleware=approver)(handlers.reject)
    app.action(ActionId.APPROVE_OVERRUN.value, middleware=approver)(handlers.overrun)
    for action_id in CONTROLS:
        app.action(action_id.value, middleware=operator)(handlers.control)
