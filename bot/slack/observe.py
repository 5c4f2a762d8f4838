"""Watching the Slack side: every Web API attempt counted, acks timed, commands and clicks logged.

- `ObserveCalls` sits first among a WebClient's retry handlers, where slack-sdk shows it every
  attempt (answers, 429s and failures, retried ones included); it counts them by method and
  outcome and tells the health check whether Slack answers. It never asks for a retry itself.
- `TimedApp` times `dispatch` of slash commands: bolt returns from it once the listener acked,
  in HTTP mode and in Socket Mode alike, so that is the ack latency Slack sees (less transit).
- `log_requests` is a global middleware that logs who asked for what (a command, a button, a
  reaction) before the guards decide; the state changes that follow are logged from the audit trail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot import metrics

log = logging.getLogger("upgradebot.requests")
LOGGED_TEXT_MAX = 300  # command text in the log: enough to see what was asked
Next = Callable[[], Any]


class ObserveCalls(RetryHandler):  # type: ignore[misc]
    """Count every Web API attempt and report Slack's reachability; never retries."""

    def __init__(self, link: Callable[[bool], None] | None = None) -> None:
        super().__init__(max_retry_count=1 << 30)
        self._link = link

    def _can_retry(self, *, state: RetryState, request: HttpRequest,
                   response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        method = request.url.rsplit("/", 1)[-1].split("?", 1)[0] or "unknown"
        outcome = _outcome(response, error)
        metrics.slack_call(method, outcome)
        if self._link is not None:
            self._link(_reachable(outcome))
        return False


# Answers that mean the bot cannot use Slack at all, whatever it asks: as bad as no answer.
LOCKED_OUT = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired",
                        "account_inactive", "team_disabled"})


def _reachable(outcome: str) -> bool:
    """Any other answer (a 429, a refused channel) shows Slack is there and takes our token."""
    return not (outcome == "unreachable" or outcome.startswith("http_5")
                or outcome in LOCKED_OUT)


def _outcome(response: HttpResponse | None, error: Exception | None) -> str:
    if response is None:
        return "unreachable"
    if response.status_code == 429:
        return "ratelimited"
    if response.status_code >= 500:
        return f"http_{response.status_code}"
    body = response.body if isinstance(response.body, dict) else {}
    if body.get("ok") is False:
        return str(body.get("error") or "error")[:40]
    return "ok" if response.status_code == 200 else f"http_{response.status_code}"


class TimedApp(App):  # type: ignore[misc]
    """bolt's App, timing slash commands from arrival to ack."""

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        """Dispatch; record the ack latency of slash commands."""
        started = time.perf_counter()
        response: BoltResponse = super().dispatch(req)
        body = req.body if isinstance(req.body, dict) else {}
        if body.get("command"):
            metrics.command_acked(time.perf_counter() - started)
        return response


def log_requests(body: dict[str, Any], next: Next) -> Any:
    """Global middleware: log each slash command, button click and reaction with who sent it."""
    if not isinstance(body, dict):
        return next()
    if body.get("command"):
        user = _text(body.get("user_id"))
        text = " ".join(_text(body.get("text")).split())[:LOGGED_TEXT_MAX]
        log.info("command %s %s by %s in %s", _text(body.get("command")), text, user,
                 _text(body.get("channel_id")), extra={"actor": user})
    elif body.get("type") == "block_actions":
        user = _text((body.get("user") or {}).get("id") if isinstance(body.get("user"), dict)
                     else None)
        actions = body.get("actions")
        for action in (a for a in (actions if isinstance(actions, list) else [])
                       if isinstance(a, dict)):
            log.info("button %s (%s) by %s", _text(action.get("action_id")),
                     _text(action.get("value"))[:80], user, extra={"actor": user})
    elif body.get("type") == "event_callback" and isinstance(body.get("event"), dict):
        event = body["event"]
        if str(event.get("type", "")).startswith("reaction_"):
            item = event.get("item") if isinstance(event.get("item"), dict) else {}
            user = _text(event.get("user"))
            log.info("%s :%s: by %s on %s/%s", _text(event.get("type")),
                     _text(event.get("reaction"))[:40], user, _text(item.get("channel")),
                     _text(item.get("ts")), extra={"actor": user})
    return next()


def _text(value: object) -> str:
    return "" if value is None else str(value)
