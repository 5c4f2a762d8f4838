"""The one mapping from an error to what a person is told, shared by the CLI and Slack.

A `UserError` (a request that cannot be done: a bad plan, an unknown name, a refused control, a
bad configuration) and a `DmaError` (what a cluster answered) are told as they are. Anything else
is a bug: the person gets an incident id, the log gets the traceback under that id.
"""

from __future__ import annotations

import logging
import uuid

from bot.dma.errors import DmaError
from bot.engine.errors import UserError

log = logging.getLogger(__name__)

EXPECTED: tuple[type[Exception], ...] = (UserError, DmaError)


def user_message(error: BaseException) -> str | None:
    """The words for the person who asked, or None when the error is a bug."""
    return str(error) if isinstance(error, EXPECTED) else None


def incident(error: BaseException, *, where: str, level: int = logging.ERROR) -> str:
    """Log a bug with its traceback under a new incident id; return the id."""
    ident = uuid.uuid4().hex[:8]
    # Only the type and the stack: an exception message may quote request content.
    log.log(level, "unexpected %s in %s (incident %s)", type(error).__name__, where, ident,
            exc_info=(type(error), error, error.__traceback__))
    return ident
