"""Buttons: approve/reject a plan or an overrun; retry, resume, abort, acknowledge, roll back.

Middleware loads the run the button names (its value is a RunRef) and checks the role:
approvers for the approval buttons, operators for the others (a refusal is answered privately).
After the ack, the work runs through the toolkit, whose failures take the one error path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.engine.errors import UserError
from bot.messages.blocks import ephemeral
from bot.messages.ids import ACK_ITEMS, ActionId, RunRef
from bot.services import RunSummary, Services
from bot.slack import answers
from bot.slack.middleware import (
    load_button_run,
    once_per_request,
    require_operator,
    require_responder,
    with_approvers,
)
from bot.slack.toolkit import Toolkit
from handlers.home import Home

CONTROLS = {ActionId.RETRY: "retry", ActionId.RESUME: "resume", ActionId.ABORT: "abort"}


class Actions:
    """One method per kind of button."""

    def __init__(self, services: Services, kit: Toolkit) -> None:
        self.services = services
        self.kit = kit
        self.home = Home(services, kit)

    def approve(self, ack: Ack, body: dict[str, Any], run: RunSummary,
                approvers: frozenset[str], respond: Respond, client: WebClient) -> None:
        """The Approve button: counts like the approve reaction."""
        ack()
        self._then(body, respond, client, lambda user: answers.approval_answer(
            run, self.services.approve(run.name, user, source="button", approvers=approvers),
            "approval"))

    def reject(self, ack: Ack, body: dict[str, Any], run: RunSummary,
               approvers: frozenset[str], respond: Respond, client: WebClient) -> None:
        """The Reject button: an approver's rejection ends the plan."""
        ack()
        self._then(body, respond, client, lambda user: answers.approval_answer(
            run, self.services.reject(run.name, user, source="button", approvers=approvers),
            "reject"))

    def overrun(self, ack: Ack, body: dict[str, Any], run: RunSummary,
                approvers: frozenset[str], respond: Respond, client: WebClient) -> None:
        """Approve overrunning the window (approvers)."""
        ack()
        self._then(body, respond, client, lambda user: ephemeral(self.services.control(
            run.name, "overrun", user, approvers=approvers)))

    def control(self, ack: Ack, body: dict[str, Any], action: dict[str, Any], run: RunSummary,
                respond: Respond, client: WebClient) -> None:
        """Retry verification, resume or abort (operators)."""
        ack()
        verb = CONTROLS[ActionId(action["action_id"])]
        self._then(body, respond, client,
                   lambda user: ephemeral(self.services.control(run.name, verb, user)))

    def acknowledge_escalation(self, ack: Ack, body: dict[str, Any], run: RunSummary,
                               respond: Respond, client: WebClient) -> None:
        """Acknowledge an escalation (on-call, operators, approvers): reminders stop."""
        ack()
        self._then(body, respond, client,
                   lambda user: ephemeral(self.services.acknowledge_escalation(run.name, user)))

    def rollback(self, ack: Ack, body: dict[str, Any], action: dict[str, Any], run: RunSummary,
                 respond: Respond, client: WebClient) -> None:
        """Roll back CLUSTER (operators): post the rollback plan of the escalated step's cluster."""
        ack()
        step_id = RunRef.decode(str(action.get("value", ""))).step_id
        channel = (self.services.settings.slack.channel
                   or (body.get("channel") or {}).get("id"))

        def work(user: str) -> dict[str, Any]:
            cluster = self.services.cluster_of_step(run.name, step_id or 0)
            name, plan = self.services.rollback(run.name, cluster, requester=user,
                                                channel=channel)
            return answers.planned_answer(name, plan, channel or "")
        self._then(body, respond, client, work)

    def acknowledge(self, ack: Ack, body: dict[str, Any], action: dict[str, Any],
                    run: RunSummary, respond: Respond, client: WebClient) -> None:
        """Acknowledge one manual checklist item (operators)."""
        ack()
        item = ACK_ITEMS[ActionId(action["action_id"])]
        self._then(body, respond, client,
                   lambda user: ephemeral(self.services.acknowledge(run.name, item, user)))

    def _then(self, body: dict[str, Any], respond: Respond, client: WebClient,
              work: Callable[[str], dict[str, Any]]) -> None:
        user = body["user"]["id"]
        if not body.get("response_url"):  # pressed on the Home tab: the tab says it
            def at_home() -> None:
                try:
                    text = work(user)["text"]
                except UserError as exc:  # a refusal is told on the tab, like any answer
                    text = f"⚠️ {exc}"
                self.home.publish(client, user, text)

            self.kit.later(at_home, respond=None, client=None, channel=None, user=user)
            return
        self.kit.later(lambda: respond(**work(user), replace_original=False), respond=respond,
                       client=None, channel=(body.get("channel") or {}).get("id"), user=user)


def register(app: App, services: Services, kit: Toolkit) -> None:
    """Register every button behind its guards."""
    handlers = Actions(services, kit)
    slack = services.settings.slack
    approver = [load_button_run(services), with_approvers(slack, kit.membership),
                once_per_request(services)]
    operator = [require_operator(slack, kit.membership), load_button_run(services),
                once_per_request(services)]
    app.action(ActionId.APPROVE.value, middleware=approver)(handlers.approve)
    app.action(ActionId.REJECT.value, middleware=approver)(handlers.reject)
    app.action(ActionId.APPROVE_OVERRUN.value, middleware=approver)(handlers.overrun)
    responder = [require_responder(slack, services.settings.escalation.notify,
                                   kit.membership), load_button_run(services),
                 once_per_request(services)]
    app.action(ActionId.ACKNOWLEDGE.value, middleware=responder)(
        handlers.acknowledge_escalation)
    for action_id in CONTROLS:
        app.action(action_id.value, middleware=operator)(handlers.control)
    app.action(ActionId.ROLLBACK.value, middleware=operator)(handlers.rollback)
    for action_id in ACK_ITEMS:
        app.action(action_id.value, middleware=operator)(handlers.acknowledge)
