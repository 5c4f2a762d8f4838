"""The Home tab: the person's roles, runs under way or waiting, the latest runs, the commands."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.services import Services
from bot.slack import answers
from bot.slack.toolkit import Toolkit


class Home:
    """app_home_opened publishes a fresh Home tab."""

    def __init__(self, services: Services, kit: Toolkit) -> None:
        self.services = services
        self.kit = kit

    def opened(self, event: dict[str, Any], client: WebClient) -> None:
        """Publish the Home tab for the person who opened it."""
        if event.get("tab", "home") != "home":
            return
        user, slack = event["user"], self.services.settings.slack
        view = answers.home_view(
            user, operator=self.kit.membership.includes(slack.operators, user),
            approver=self.kit.membership.includes(slack.approvers, user),
            active=self.services.active_runs(), recent=self.services.history(limit=5))
        client.views_publish(user_id=user, view=view)


def register(app: App, services: Services, kit: Toolkit) -> None:
    """Register the Home tab."""
    app.event("app_home_opened")(Home(services, kit).opened)
