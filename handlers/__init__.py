"""Slack listeners, one module per surface: commands, reactions, actions, home, planner.

`register_all` is the one place they are attached to an app; only the composition root calls it.
"""

from __future__ import annotations

from slack_bolt import App

from bot.services import Services
from bot.slack.toolkit import Toolkit
from handlers import actions, commands, home, planner, reactions


def register_all(app: App, services: Services, kit: Toolkit) -> None:
    """Register every listener (with its guards) on the app."""
    for surface in (commands, reactions, actions, home, planner):
        surface.register(app, services, kit)
