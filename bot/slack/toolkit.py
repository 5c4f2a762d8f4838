"""What the Slack handlers need beside the services: membership and a runner for slow work."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient

from bot.slack.errors import Respond, answer, describe
from bot.slack.membership import Membership

log = logging.getLogger(__name__)


class InlineExecutor(Executor):
    """Runs work in the calling thread (tests: dispatch returns after the listener finished)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run `fn` now and return a finished future."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the future carries it, as a pool's would
            future.set_exception(exc)
        return future


@dataclass(frozen=True)
class Toolkit:
    """Membership resolution, and an executor for cluster reads that must not hold a listener."""

    membership: Membership
    background: Executor

    def later(self, work: Callable[[], object], *, respond: Respond | None,
              client: WebClient | None, channel: str | None, user: str | None) -> None:
        """Run slow work after the ack; a failure is answered like any listener error."""

        def run() -> None:
            try:
                work()
            except Exception as exc:  # the error path of work done after the ack
                answer(describe(exc), respond=respond, client=client, channel=channel,
                       user=user)

        self.background.submit(run)
