"""The Home tab: the person's roles, a planning button, runs with their buttons, the latest runs."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.services import Services
from bot.slack import answers
from bot.slack.toolkit import Toolkit


class Home:
    """app_home_opened publishes a fresh Home tab; buttons pressed there publish it again."""

    def __init__(self, services: Services, kit: Toolkit) -> None:
        self.services = services
        self.kit = kit

    def opened(self, event: dict[str, Any], client: WebClient) -> None:
        """Publish the Home tab for the person who opened it."""
        if event.get("tab", "home") == "home":
            self.publish(client, event["user"])

    def publish(self, client: WebClient, user: str, notice: str = "") -> None:
        """Publish the Home tab for one person, with a line saying what just happened."""
        slack = self.services.settings.slack
        view = answers.home_view(
            user, operator=self.kit.membership.includes(slack.operators, user),
            approver=self.kit.membership.includes(slack.approvers, user),
            active=self.services.active_runs(), recent=self.services.history(limit=5),
            notice=notice)
        client.views_publish(user_id=user, view=view)


def register(app: App, services: Services, kit: Toolkit) -> None:
    """Register the Home tab."""
    app.event("app_home_opened")(Home(services, kit).opened)
