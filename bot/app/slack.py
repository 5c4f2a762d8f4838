"""The Slack side of the process: Web API clients and the bolt app with its guards and listeners."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.signature import Clock as SignatureClock

from bot.config import Environment
from bot.services import ServiceError, Services
from bot.slack.errors import handle_error
from bot.slack.middleware import Gate, VerifySignature, dedupe_events
from bot.slack.observe import ObserveCalls, TimedApp, log_requests
from bot.slack.toolkit import Toolkit
from handlers import register_all

log = logging.getLogger(__name__)


def web_client(env: Environment, *, blocking_retries: bool, timeout_s: float = 10.0,
               token: str | None = None,
               reachable: Callable[[bool], None] | None = None) -> WebClient:
    """A WebClient on SLACK_API_URL; `blocking_retries` adds the 429/5xx retry handlers.

    Only where waiting is acceptable (listeners after their ack, start-up): the outbox's client
    must answer at once and let the outbox retry. Every attempt is counted in the metrics and,
    given `reachable`, reported to the health check.
    """
    handlers: list[RetryHandler] = [ObserveCalls(reachable),
                                    ConnectionErrorRetryHandler(max_retry_count=1)]
    if blocking_retries:
        handlers += [RateLimitErrorRetryHandler(max_retry_count=2),
                     ServerErrorRetryHandler(max_retry_count=2)]
    base_url = env.slack_api_url if env.slack_api_url.endswith("/") else env.slack_api_url + "/"
    if not token:
        token = env.slack_bot_token.get_secret_value() if env.slack_bot_token else None
    return WebClient(token=token, base_url=base_url,
                     timeout=max(1, int(timeout_s)), retry_handlers=handlers,
                     logger=logging.getLogger("upgradebot.slack"))


def build_app(*, services: Services, client: WebClient, signing_secret: str | None, kit: Toolkit,
              listener_executor: Executor | None = None,
              signature_clock: SignatureClock | None = None,
              verify_token: bool = True) -> App:
    """Build the app: signature, payload shapes, event de-dup, listeners, the error handler.

    `signing_secret` None is Socket Mode: no signatures there (the app-level token opened the
    connection), so no check; HTTP mode always has one (`serve` refuses to start without it).
    The payload-shape guard runs in both modes.
    """
    app = TimedApp(client=client, signing_secret=signing_secret or "",
                   name="upgradebot", request_verification_enabled=False,
                   # In the place bolt's own check would take: before authorization and the rest.
                   before_authorize=Gate(VerifySignature(signing_secret, signature_clock)
                                         if signing_secret else None),
                   token_verification_enabled=verify_token, listener_executor=listener_executor,
                   logger=logging.getLogger("upgradebot.bolt"))
    app.use(log_requests)
    app.use(dedupe_events(services))
    app.error(handle_error)
    register_all(app, services, kit)
    return app


def check_token(client: WebClient) -> bool:
    """Check the bot token at start: refuse a bad one; True when Slack answered."""
    try:
        client.auth_test()
    except SlackApiError as exc:
        if exc.response.status_code < 500 and exc.response.get("error") != "ratelimited":
            raise ServiceError(f"Slack refused the bot token ({exc.response.get('error')}): "
                               "check SLACK_BOT_TOKEN and SLACK_API_URL") from None
        log.warning("Slack is not answering at start-up; serving anyway, messages wait")
        return False
    except OSError as exc:
        log.warning("Slack unreachable at start-up (%s); serving anyway, messages wait",
                    type(exc).__name__)
        return False
    return True
