"""The base of every error written for the person who asked (style.md, "Errors as a hierarchy").

A `UserError` says what cannot be done and what would work; the CLI and the Slack error path both
show its message as it is. Anything else that escapes is a bug and gets an incident id. The engine
imports nothing of the project, so the base lives here and every layer above subclasses it.
"""

from __future__ import annotations


class UserError(Exception):
    """A request that cannot be done; the message is written for the person who asked."""
