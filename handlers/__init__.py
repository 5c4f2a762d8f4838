"""Slack listeners, one module per surface: commands, reactions, actions, home.

`register_all` is the one place they are attached to an app. Submodules are imported inside it,
not here: `bot.messages` imports `handlers.slack_ids`, and importing this package must not drag
the listeners (and through them the services) into that import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.services import Services
    from bot.slack.toolkit import Toolkit


def register_all(app: App, services: Services, kit: Toolkit | None = None) -> None:
    """Register every listener (with its guards) on the app."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.slack.membership import Membership
    from bot.slack.toolkit import Toolkit
    from handlers import actions, commands, home, reactions

    kit = kit or Toolkit(Membership(app.client), ThreadPoolExecutor(4, "upgradebot-reads"))
    for surface in (commands, reactions, actions, home):
        surface.register(app, services, kit)
