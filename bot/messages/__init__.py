"""The messages the bot posts, built in one place; each has a plain-text fallback (`text`).

Below everything that posts or answers: builders are pure (values in, payloads out). `ids` holds
the Slack surface (command, action ids, button references), `blocks` the Block Kit primitives,
`layouts` how each message is laid out as blocks, and `plan`, `board`, `thread` what each says.
"""

from __future__ import annotations

from bot.messages.board import ClusterLine, board_message
from bot.messages.common import Payload, escape, mention
from bot.messages.escalation import EscalationPacket, escalation_message, ways_on
from bot.messages.plan import STRATEGY_TITLE, plan_message
from bot.messages.thread import (
    final_check_message,
    notice,
    report_message,
    verification_message,
)

__all__ = ["STRATEGY_TITLE", "ClusterLine", "EscalationPacket", "Payload", "board_message",
           "escalation_message", "escape", "final_check_message", "mention", "notice",
           "plan_message", "report_message", "verification_message", "ways_on"]
