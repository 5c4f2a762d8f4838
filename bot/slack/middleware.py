"""Guards that run before the listeners: signatures, event de-duplication, roles, run loading.

Each guard either lets the request through (`next()`), answers it itself (a duplicate event gets
a plain 200 and nothing else happens), or raises a domain error that the one error handler turns
into an ephemeral answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware.request_verification import RequestVerification
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier

from bot.config import SlackSettings
from bot.engine.errors import UserError
from bot.messages.ids import ActionId, RunRef
from bot.services import RunSummary, ServiceError, Services
from bot.slack.grammar import MUTATING, subcommand
from bot.slack.membership import Membership

log = logging.getLogger(__name__)
Next = Callable[[], Any]


class NotPermitted(UserError):
    """Someone asked for something their role does not allow."""


class UnixClock(SignatureClock):
    """Seconds since the epoch, from an injectable function (tests fix it)."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now

    def now(self) -> float:
        """Return the current Unix time."""
        return self._now()


class VerifySignature(RequestVerification):
    """Slack's request signature check (HMAC-SHA256, 5-minute window) that logs no body."""

    def __init__(self, signing_secret: str, clock: SignatureClock | None = None) -> None:
        super().__init__(signing_secret)
        self._verifier = SignatureVerifier(signing_secret=signing_secret,
                                           clock=clock or UnixClock())

    def _debug_log_error(self, signature: str, timestamp: str, body: str) -> None:
        # The body can carry a verification token and user text: say only what was refused.
        log.warning("refused a request with a bad or stale signature (timestamp %s, %d bytes)",
                    timestamp, len(body))


def dedupe_events(services: Services) -> Callable[..., Any]:
    """Global middleware: an event id seen before gets 200 and goes no further."""

    def dedupe(body: dict[str, Any], request: BoltRequest, next: Next) -> Any:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if not event_id:
            return next()
        kind = str((body.get("event") or {}).get("type", "event"))
        if services.events.first_time(str(event_id), kind):
            return next()
        retry = request.headers.get("x-slack-retry-num", ["0"])[0]
        log.info("event %s (%s) already handled; Slack retry %s answered and dropped",
                 event_id, kind, retry)
        return BoltResponse(status=200, body="")

    return dedupe


def require_operator(slack: SlackSettings, membership: Membership) -> Callable[..., Any]:
    """Listener middleware: state-changing commands and buttons are for operators only."""

    def operator_only(body: dict[str, Any], context: Any, next: Next) -> Any:
        if body.get("command") and subcommand(body.get("text", "")) not in MUTATING:
            return next()  # help, inventory, status, history: everyone may read
        user = context.user_id or ""
        if not membership.includes(slack.operators, user):
            raise NotPermitted("only operators may do that (the `operators` of the "
                               "configuration); everyone may use help, inventory, status "
                               "and history")
        return next()

    return operator_only


def require_responder(slack: SlackSettings, notify: Sequence[str],
                      membership: Membership) -> Callable[..., Any]:
    """Listener middleware: acknowledging an escalation is for on-call, operators, approvers."""

    def responder_only(context: Any, next: Next) -> Any:
        user = context.user_id or ""
        if not membership.includes([*notify, *slack.operators, *slack.approvers], user):
            raise NotPermitted("only the on-call group, operators and approvers may "
                               "acknowledge an escalation")
        return next()

    return responder_only


def with_approvers(slack: SlackSettings, membership: Membership) -> Callable[..., Any]:
    """Listener middleware: put the approvers (groups expanded) in the context; skip bots."""

    def approvers(context: Any, next: Next) -> Any:
        user = context.user_id or ""
        if membership.is_bot(user):
            log.info("ignored an approval gesture by bot user %s", user)
            return BoltResponse(status=200, body="")
        context["approvers"] = membership.expand(slack.approvers)
        return next()

    return approvers


def load_button_run(services: Services) -> Callable[..., Any]:
    """Listener middleware: the run a button names (its value is a RunRef) goes in the context."""

    def load(action: dict[str, Any], context: Any, next: Next) -> Any:
        try:
            ref = RunRef.decode(str(action.get("value", "")))
        except ValueError:
            raise ServiceError("this button does not name a run any more") from None
        context["run"] = services.summary(ref.run_id)
        return next()

    return load


def load_reacted_run(services: Services, slack: SlackSettings,
                     client: WebClient) -> Callable[..., Any]:
    """Listener middleware: reactions count only on a plan message, with the two emoji."""

    def load(event: dict[str, Any], context: Any, next: Next) -> Any:
        item = event.get("item") or {}
        if event.get("reaction") not in (slack.approve_reaction, slack.reject_reaction) \
                or item.get("type") != "message":
            return BoltResponse(status=200, body="")
        channel, ts = str(item.get("channel")), str(item.get("ts"))
        run = services.run_for_message(channel, ts)
        if run is None and event.get("item_user") == context.bot_user_id:
            run = _plan_behind(services, client, channel, ts)
        if run is None:
            return BoltResponse(status=200, body="")
        context["run"] = run
        return next()

    return load


def _plan_behind(services: Services, client: WebClient, channel: str,
                 ts: str) -> RunSummary | None:
    """The run of a plan message whose ts is not stored yet (reacted on within moments).

    The outbox stores the ts just after Slack answered; a reaction can arrive in between. The
    message itself names its run in its Approve button.
    """
    try:
        message = client.reactions_get(channel=channel, timestamp=ts)["message"]
    except (SlackApiError, OSError):
        return None
    values = [e.get("value") for b in message.get("blocks") or [] if b.get("type") == "actions"
              for e in b.get("elements", []) if e.get("action_id") == ActionId.APPROVE.value]
    try:
        run = services.summary(RunRef.decode(str(values[0])).run_id) if values else None
    except (ValueError, ServiceError):
        return None
    log.info("reaction on %s's plan message before its ts was stored", run and run.name)
    return run if run is not None and run.message_ts in (None, ts) else None
