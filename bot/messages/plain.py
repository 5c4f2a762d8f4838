"""Slack markup made plain, for a terminal or a file: no `*bold*`, no `<@U…>` or `<!subteam^…>`."""

from __future__ import annotations

import re

_GROUP = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")
_USER = re.compile(r"<@([\w.-]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^>]+)>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_EMOJI = {":white_check_mark:": "✅", ":x:": "❌"}


def plain(text: str) -> str:
    """Return the text without Slack's markup; mentions become @name (the id when unnamed)."""
    text = _GROUP.sub(lambda m: f"@{m.group(2) or m.group(1)}", text)
    text = _USER.sub(lambda m: f"@{m.group(2) or m.group(1)}", text)
    text = _SPECIAL.sub(r"@\1", text)
    text = _LINK.sub(r"\2 (\1)", text)
    text = _BARE_LINK.sub(r"\1", text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    text = _STRIKE.sub(r"\1", text)
    for code, glyph in _EMOJI.items():
        text = text.replace(code, glyph)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
