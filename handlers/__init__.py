"""Slack listeners, one module per surface: commands, reactions, actions, home.

`register_all` is the one place they are attached to an app; only the composition root calls it.
"""

from __future__ import annotations

from slack_bolt import App

from bot.services import Services
from bot.slack.toolkit import Toolkit
from handlers import actions, commands, home, reactions


def register_all(app: App, services: Services, kit: Toolkit) -> None:
    """Register every listener (with its guards) on the app."""
    for surface in (commands, reactions, actions, home):
        surface.register(app, services, kit)
