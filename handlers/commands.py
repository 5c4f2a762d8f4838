"""`/upgrade`: parse the text, acknowledge, call one service, answer the asker privately.

Everything after the ack runs on the toolkit's background executor: cluster reads (inventory,
plan) never hold bolt's listener pool, and a failure after the ack is answered by the same error
path as one before it (bolt itself cannot answer an error raised after `ack()`). Operators-only
subcommands are guarded by middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.messages.blocks import ephemeral
from bot.messages.ids import SLASH_COMMAND
from bot.services import Services
from bot.slack import answers, grammar
from bot.slack.middleware import once_per_request, require_operator
from bot.slack.toolkit import Toolkit
from handlers.planner import Planner

Command = dict[str, Any]


class Commands:
    """One listener for `/upgrade`, routing each typed request to a small method."""

    def __init__(self, services: Services, kit: Toolkit) -> None:
        self.services = services
        self.kit = kit
        self.planner = Planner(services, kit)
        self.routes: dict[type, Callable[[Any, Command, Respond], None]] = {
            grammar.InventoryRequest: self.inventory, grammar.PlanRequest: self.plan,
            grammar.StatusRequest: self.status, grammar.ControlRequest: self.control,
            grammar.HistoryRequest: self.history, grammar.RollbackRequest: self.rollback,
            grammar.RestoreRequest: self.restore, grammar.AuditRequest: self.audit,
            grammar.VerifyRequest: self.verify, grammar.EvidenceRequest: self.evidence,
            grammar.StageRequest: self.stage}

    def upgrade(self, ack: Ack, command: Command, respond: Respond, client: WebClient) -> None:
        """Parse (a usage error becomes the ack's answer), ack, then do the work."""
        text = command.get("text") or ""
        if not text.strip() and self._operator(command):
            ack()  # no words: the planning modal (others get the help below)
            self.planner.open(client, command["trigger_id"], command.get("channel_id"))
            return
        request = grammar.parse(text)
        if isinstance(request, grammar.HelpRequest):  # answered in the ack itself
            ack(**answers.help_answer())
            return
        slow = isinstance(request, grammar.PlanRequest | grammar.InventoryRequest
                          | grammar.RollbackRequest | grammar.RestoreRequest
                          | grammar.VerifyRequest | grammar.StageRequest)
        ack(**(ephemeral("Reading the clusters…") if slow else {}))
        route = self.routes[type(request)]
        self.kit.later(lambda: route(request, command, respond), respond=respond, client=None,
                       channel=command.get("channel_id"), user=command.get("user_id"))

    def _operator(self, command: Command) -> bool:
        operators = self.services.settings.slack.operators
        return self.kit.membership.includes(operators, command.get("user_id", ""))

    def inventory(self, request: grammar.InventoryRequest, command: Command,
                  respond: Respond) -> None:
        """Read every cluster live."""
        respond(**answers.inventory_answer(self.services.inventory()))

    def plan(self, request: grammar.PlanRequest, command: Command, respond: Respond) -> None:
        """Plan from the live clusters and post it for approval."""
        channel = self.services.settings.slack.channel or command["channel_id"]
        plan = self.services.plan(request.target, request.version, request.strategy.value,
                                  emergency=request.emergency)
        name = self.services.submit(plan, requester=command["user_id"], channel=channel,
                                    window=request.window)
        respond(**answers.planned_answer(name, plan, channel))

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

    def stage(self, request: grammar.StageRequest, command: Command, respond: Respond) -> None:
        """Upload and check the package on every cluster, ahead of the window (operators)."""
        rows = self.services.stage(request.target, request.version, command["user_id"])
        respond(**answers.staged_answer(request.target, request.version, rows))
    def rollback(self, request: grammar.RollbackRequest, command: Command,
                 respond: Respond) -> None:
        """Plan the vendor's rollback of one cluster and post it for approval."""
        channel = self.services.settings.slack.channel or command["channel_id"]
        name, plan = self.services.rollback(request.run, request.cluster,
                                            requester=command["user_id"], channel=channel)
        respond(**answers.planned_answer(name, plan, channel))

    def restore(self, request: grammar.RestoreRequest, command: Command,
                respond: Respond) -> None:
        """Plan the way back to a served network and post it for approval."""
        channel = self.services.settings.slack.channel or command["channel_id"]
        name, plan = self.services.restore(request.run, requester=command["user_id"],
                                           channel=channel)
        respond(**answers.planned_answer(name, plan, channel))

    def history(self, request: grammar.HistoryRequest, command: Command,
                respond: Respond) -> None:
        """The latest runs, of one target or all."""
        respond(**answers.history_answer(self.services.history(request.target), request.target))


    def audit(self, request: grammar.AuditRequest, command: Command, respond: Respond) -> None:
        """A run's audit trail, privately."""
        respond(**answers.audit_answer(*self.services.audit(request.run)))
    def verify(self, request: grammar.VerifyRequest, command: Command, respond: Respond) -> None:
        """The final checks now, read-only; the result is posted to the channel."""
        result = self.services.verify(request.target, command["user_id"],
                                      command.get("channel_id"))
        respond(**answers.verified_answer(result.target, result.ok, result.summary))

    def evidence(self, request: grammar.EvidenceRequest, command: Command,
                 respond: Respond) -> None:
        """Upload the run's evidence bundle to its thread."""
        name = self.services.request_evidence(request.run, command["user_id"])
        respond(**answers.evidence_answer(name))


def register(app: App, services: Services, kit: Toolkit) -> None:
    """Register `/upgrade` behind the operators guard."""
    commands = Commands(services, kit)
    guard = require_operator(services.settings.slack, kit.membership)
    app.command(SLASH_COMMAND, middleware=[guard, once_per_request(services)])(commands.upgrade)
