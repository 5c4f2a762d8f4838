"""`/upgrade`: parse the text, acknowledge, call one service, answer the asker privately.

Cluster reads (inventory, plan) run after the ack on the toolkit's background executor, never in
bolt's listener pool; operators-only subcommands are guarded by middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.services import Services
from bot.slack import answers, grammar
from bot.slack.blocks import ephemeral
from bot.slack.middleware import require_operator
from bot.slack.toolkit import Toolkit
from handlers.slack_ids import SLASH_COMMAND

Command = dict[str, Any]


class Commands:
    """One listener for `/upgrade`, routing each typed request to a small method."""

    def __init__(self, services: Services, kit: Toolkit) -> None:
        self.services = services
        self.kit = kit
        self.routes: dict[type, Callable[[Any, Command, Respond], None]] = {
            grammar.HelpRequest: self.help, grammar.InventoryRequest: self.inventory,
            grammar.PlanRequest: self.plan, grammar.StatusRequest: self.status,
            grammar.ControlRequest: self.control, grammar.HistoryRequest: self.history}

    def upgrade(self, ack: Ack, command: Command, respond: Respond) -> None:
        """Parse (a usage error becomes the ack's answer), ack, then do the work."""
        request = grammar.parse(command.get("text", ""))
        if isinstance(request, grammar.HelpRequest):
            ack(**answers.help_answer())
            return
        slow = isinstance(request, grammar.PlanRequest | grammar.InventoryRequest)
        ack(**(ephemeral("Reading the clusters…") if slow else {}))
        self.routes[type(request)](request, command, respond)

    def help(self, request: grammar.HelpRequest, command: Command, respond: Respond) -> None:
        """Already answered in the ack."""

    def inventory(self, request: grammar.InventoryRequest, command: Command,
                  respond: Respond) -> None:
        """Read every cluster live, after the ack."""
        self._later(lambda: respond(**answers.inventory_answer(self.services.inventory())),
                    command, respond)

    def plan(self, request: grammar.PlanRequest, command: Command, respond: Respond) -> None:
        """Plan from the live clusters and post it for approval, after the ack."""
        channel = self.services.settings.slack.channel or command["channel_id"]

        def work() -> None:
            plan = self.services.plan(request.target, request.version, request.strategy.value)
            name = self.services.submit(plan, requester=command["user_id"], channel=channel,
                                        window=request.window)
            respond(**answers.planned_answer(name, plan, channel))

        self._later(work, command, respond)

    def status(self, request: grammar.StatusRequest, command: Command, respond: Respond) -> None:
        """One run step by step, or every run not over yet."""
        if request.run is None:
            respond(**answers.overview_answer(self.services.active_runs()))
            return
        _, steps = self.services.run_status(request.run)
        respond(**answers.status_answer(self.services.summary(request.run), steps))

    def control(self, request: grammar.ControlRequest, command: Command,
                respond: Respond) -> None:
        """Pause, resume, abort or retry a run (operators; the thread says so too)."""
        respond(**ephemeral(self.services.control(request.run, request.action,
                                                  command["user_id"])))

    def history(self, request: grammar.HistoryRequest, command: Command,
                respond: Respond) -> None:
        """The latest runs, of one target or all."""
        respond(**answers.history_answer(self.services.history(request.target), request.target))

    def _later(self, work: Callable[[], None], command: Command, respond: Respond) -> None:
        self.kit.later(work, respond=respond, client=None, channel=command.get("channel_id"),
                       user=command.get("user_id"))


def register(app: App, services: Services, kit: Toolkit) -> None:
    """Register `/upgrade` behind the operators guard."""
    commands = Commands(services, kit)
    guard = require_operator(services.settings.slack, kit.membership)
    app.command(SLASH_COMMAND, middleware=[guard])(commands.upgrade)
