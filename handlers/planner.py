"""The planning modal: opened by `/upgrade` with no words or the Home tab's button; submitted.

A submission is checked field by field before the ack (errors shown beside the fields); then the
modal says it is reading the clusters, and the plan is made and posted as `/upgrade plan` does.
A refusal that needs the clusters (a strategy that does not fit, a run already holding them)
brings the form back with the reason on top and the values kept.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.engine.errors import UserError
from bot.messages.ids import PLAN_MODAL, ActionId
from bot.messages.modal import notice_view
from bot.services import Services
from bot.slack import answers
from bot.slack.middleware import require_operator
from bot.slack.planner import PlanForm, channel_of, check, planning_view, submitted
from bot.slack.toolkit import Toolkit


class Planner:
    """Open the modal, check a submission, then plan in the background."""

    def __init__(self, services: Services, kit: Toolkit) -> None:
        self.services = services
        self.kit = kit

    def open(self, client: WebClient, trigger_id: str, channel: str | None) -> None:
        """Open the modal (within the trigger's 3 seconds)."""
        client.views_open(trigger_id=trigger_id,
                          view=planning_view(self.services.settings, channel=channel))

    def from_home(self, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        """The Home tab's "Plan an upgrade" button."""
        ack()
        self.open(client, body["trigger_id"], None)

    def submit(self, ack: Ack, body: dict[str, Any], view: dict[str, Any],
               client: WebClient) -> None:
        """Check the fields; answer errors beside them, or plan and post."""
        values = submitted(view)
        form, errors = check(values, self.services.settings, channel_of(view))
        if form is None:
            ack(response_action="errors", errors=errors)
            return
        ack(response_action="update", view=notice_view("Planning", "Reading the clusters…"))
        user = body["user"]["id"]
        self.kit.later(lambda: self._plan(client, view, values, form, user), respond=None,
                       client=client, channel=form.channel, user=user)

    def _plan(self, client: WebClient, view: dict[str, Any], values: dict[str, str],
              form: PlanForm, user: str) -> None:
        try:
            plan = self.services.plan(form.target, form.version, form.strategy.value)
            name = self.services.submit(plan, requester=user, channel=form.channel,
                                        window=form.window)
        except UserError as exc:  # the command's refusals: the form again, the reason on top
            client.views_update(view_id=view["id"], view=planning_view(
                self.services.settings, channel=channel_of(view), values=values,
                problem=str(exc)))
            return
        text = answers.planned_answer(name, plan, form.channel or "")["text"]
        client.views_update(view_id=view["id"], view=notice_view("Plan posted", text))


def register(app: App, services: Services, kit: Toolkit) -> None:
    """Register the Home button and the modal's submission, for operators."""
    planner = Planner(services, kit)
    guard = [require_operator(services.settings.slack, kit.membership)]
    app.action(ActionId.OPEN_PLANNER.value, middleware=guard)(planner.from_home)
    app.view(PLAN_MODAL, middleware=guard)(planner.submit)
