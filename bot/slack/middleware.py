"""Guards that run before the listeners: signatures, event de-duplication, roles, run loading.

Each guard either lets the request through (`next()`), answers it itself (a duplicate event gets
a plain 200 and nothing else happens), or raises a domain error that the one error handler turns
into an ephemeral answer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware
from slack_bolt.middleware.request_verification import RequestVerification
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier

from bot.config import SlackSettings
from bot.engine.errors import UserError
from bot.messages.blocks import ephemeral
from bot.messages.ids import ActionId, RunRef
from bot.services import RunSummary, ServiceError, Services
from bot.slack import shapes
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


class Gate(Middleware):
    """Before authorization: the signature (HTTP), then, in both modes, the payload's shape.

    A payload that lacks a field a listener reads, or that no listener handles, is
    acknowledged (200, so Slack does not retry it) and logged once, never a 500; this runs
    before bolt's own middleware, which reads some fields too.
    """

    def __init__(self, verify: VerifySignature | None) -> None:
        self.verify = verify  # None in Socket Mode: no signatures there

    def process(self, *, req: BoltRequest, resp: BoltResponse,
                next: Callable[[], BoltResponse]) -> BoltResponse:
        """Check the signature, then the payload's shape, then go on."""
        if self.verify is None:
            return _whole(req, next)
        return self.verify.process(req=req, resp=resp, next=lambda: _whole(req, next))


def _whole(req: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse:
    found = shapes.problem(req.body) if isinstance(req.body, dict) else "not a JSON object"
    if found is None:
        return next()
    body = req.body if isinstance(req.body, dict) else {}
    kind = body.get("type") or ("command" if "command" in body else "unknown")
    # The kind is the sender's text: only a short, printable form of it reaches the log.
    log.warning("acknowledged and ignored a %s payload: %s", _printable(str(kind)), found)
    return BoltResponse(status=200, body="")


def dedupe_events(services: Services) -> Callable[..., Any]:
    """Global middleware: an event whose effect is committed gets 200 and goes no further.

    Only read here: the flow that acts records the id with its effect, so a delivery whose
    listener failed leaves no id and Slack's retry goes through. Two deliveries at once are
    settled there too (the second finds the id under the run's lock and does nothing).
    """

    def dedupe(body: dict[str, Any], request: BoltRequest, next: Next) -> Any:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if not event_id or not services.events.seen(str(event_id)):
            return next()
        kind = str((body.get("event") or {}).get("type", "event"))
        retry = request.headers.get("x-slack-retry-num", ["0"])[0]
        log.info("event %s (%s) already handled; Slack retry %s answered and dropped",
                 event_id, kind, _printable(retry))
        return BoltResponse(status=200, body="")

    return dedupe


REPLAYED = ("this request was already handled (the same Slack request arrived twice); "
            "nothing was changed again")


def once_per_request(services: Services) -> Callable[..., Any]:
    """Listener middleware: a state-changing command or click acts once per Slack request.

    Slack never retries commands and clicks; the same request again within its 5-minute
    signature window is a replay. The key is what Slack sends: the trigger id, else the
    request's signature.
    """

    def once(body: dict[str, Any], request: BoltRequest, next: Next) -> Any:
        if body.get("command") and subcommand(body.get("text") or "") not in MUTATING:
            return next()  # reading changes nothing: no need to remember it
        key = body.get("trigger_id") or request.headers.get("x-slack-signature", [""])[0]
        kind = "command" if body.get("command") else "click"
        if not key or services.events.first_time(f"{kind}:{key}", kind):
            return next()
        log.warning("a %s arrived again with the same trigger id; answered, nothing done", kind)
        if body.get("command"):
            return BoltResponse(status=200, body=ephemeral(f"⚠️ {REPLAYED}"))
        return BoltResponse(status=200, body="")

    return once


def _printable(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "?", text)[:40]


def require_operator(slack: SlackSettings, membership: Membership) -> Callable[..., Any]:
    """Listener middleware: state-changing commands and buttons are for operators only."""

    def operator_only(body: dict[str, Any], context: Any, next: Next) -> Any:
        if body.get("command") and subcommand(body.get("text") or "") not in MUTATING:
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
    """Listener middleware: the run a button names (its value is a RunRef) goes in the context.

    The button must sit on a message of that run (its plan message or one posted for it): a
    forged value naming another run is refused, not counted for that run.
    """

    def load(body: dict[str, Any], action: dict[str, Any], context: Any, next: Next) -> Any:
        try:
            ref = RunRef.decode(str(action.get("value", "")))
        except ValueError:
            raise ServiceError("this button does not name a run any more") from None
        run = services.summary(ref.run_id)
        if (body.get("container") or {}).get("type") == "view":
            # Pressed on the Home tab, which lists every active run with the buttons the
            # presser's role allows: no message to match; the role guards still apply.
            context["run"] = run
            return next()
        channel = str((body.get("container") or {}).get("channel_id")
                      or (body.get("channel") or {}).get("id") or "")
        ts = str((body.get("container") or {}).get("message_ts") or "")
        if not services.is_message_of(run, channel, ts):
            log.warning("refused a %s click: its value names %s but the message is not %s's",
                        _printable(str(action.get("action_id"))), run.name, run.name)
            raise ServiceError(f"this button does not belong to {run.name}'s messages; "
                               "nothing was done")
        context["run"] = run
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
