"""Block Kit primitives: small pure functions that return the dicts Slack expects.

Slack's limits are applied here, once: 3000 characters of section text, 10 fields of 2000, 150
characters of header, 75 of button label, 50 blocks per message. Longer text is split into
several sections at line ends rather than cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.messages.ids import ActionId, RunRef

Block = dict[str, Any]

SECTION_MAX = 3000
FIELD_MAX = 2000
HEADER_MAX = 150
BUTTON_MAX = 75
BLOCKS_MAX = 50
TEXT_MAX = 39000  # chat.postMessage truncates text beyond 40000 characters


def clip(text: str, limit: int) -> str:
    """Shorten text to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object."""
    return {"type": "mrkdwn", "text": text}


def plain(text: str, limit: int = SECTION_MAX) -> dict[str, Any]:
    """A plain_text text object with emoji."""
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def header(text: str) -> Block:
    """A header block (plain text, bold, large)."""
    return {"type": "header", "text": plain(text, HEADER_MAX)}


def sections(text: str) -> list[Block]:
    """One or more section blocks holding `text`, split at line ends under Slack's limit."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines() or [""]:
        line = clip(line, SECTION_MAX)
        if current and len(current) + 1 + len(line) > SECTION_MAX:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    chunks.append(current)
    return [{"type": "section", "text": mrkdwn(chunk or " ")} for chunk in chunks]


def section(text: str) -> Block:
    """A single section block (text cut at Slack's limit)."""
    return {"type": "section", "text": mrkdwn(clip(text or " ", SECTION_MAX))}


def fields(pairs: Iterable[tuple[str, str]]) -> Block:
    """A section of up to ten fields (bold label over value), shown in two columns."""
    items = [mrkdwn(clip(f"*{label}*\n{value}", FIELD_MAX)) for label, value in pairs]
    return {"type": "section", "fields": items[:10]}


def context(*texts: str) -> Block:
    """A context block: small grey text."""
    return {"type": "context", "elements": [mrkdwn(clip(t, SECTION_MAX)) for t in texts[:10]]}


def divider() -> Block:
    """A divider line."""
    return {"type": "divider"}


def button(label: str, action: ActionId, ref: RunRef, *, style: str | None = None,
           confirm: tuple[str, str] | None = None) -> dict[str, Any]:
    """A button whose value names the run it acts on; `confirm` is (title, question)."""
    element: dict[str, Any] = {"type": "button", "text": plain(label, BUTTON_MAX),
                               "action_id": action.value, "value": ref.encode()}
    if style:
        element["style"] = style
    if confirm:
        title, question = confirm
        element["confirm"] = {"title": plain(title, 100), "text": mrkdwn(question),
                              "confirm": plain("Yes", 30), "deny": plain("Cancel", 30)}
    return element


def actions(block_id: str, elements: Sequence[dict[str, Any]]) -> Block:
    """An actions block with buttons."""
    return {"type": "actions", "block_id": block_id, "elements": list(elements)[:25]}


def bullets(items: Iterable[str], mark: str = "•") -> str:
    """Lines of text, each starting with `mark`."""
    return "\n".join(f"{mark} {item}" for item in items)


def payload(text: str, blocks: Sequence[Block]) -> dict[str, Any]:
    """A message: plain-text fallback plus blocks, both within Slack's limits."""
    return {"text": clip(text, TEXT_MAX), "blocks": list(blocks)[:BLOCKS_MAX]}


def ephemeral(text: str, blocks: Sequence[Block] = ()) -> dict[str, Any]:
    """A reply only the person who asked sees (response_url or ack body)."""
    body: dict[str, Any] = {"response_type": "ephemeral", "text": clip(text, TEXT_MAX)}
    if blocks:
        body["blocks"] = list(blocks)[:BLOCKS_MAX]
    return body
