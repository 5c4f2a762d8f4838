"""The timeline picture: a PNG that decodes, one row per cluster, escalations marked in red."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from PIL import Image

from bot.reports.timeline import ESCALATION_COLOUR, Mark, Row, Span, Timeline, render_png

T0 = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _timeline(escalated: bool) -> Timeline:
    rows = tuple(
        Row(name, planned=(Span("install", _at(10 * i), _at(10 * i + 30)),),
            actual=(Span("drain", _at(10 * i), _at(10 * i + 5)),
                    Span("install", _at(10 * i + 5), _at(10 * i + 45))))
        for i, name in enumerate(("dallas", "denver", "austin")))
    marks = (Mark(_at(60), "denver", "cannot log in"),) if escalated else ()
    return Timeline("R1: full-outage upgrade of global to 10.1.0.1", rows, now=_at(90),
                    tz="America/Chicago", outage=(_at(5), _at(80)),
                    window=(_at(0), _at(240)), escalations=marks)


def _red_pixels(png: bytes) -> int:
    red = tuple(int(ESCALATION_COLOUR[i:i + 2], 16) for i in (1, 3, 5))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    pixels = image.load()
    assert pixels is not None  # a loaded RGB image always has its pixels
    return sum(1 for x in range(width) for y in range(height) if pixels[x, y] == red)


def test_the_png_decodes_and_names_its_rows() -> None:
    png = render_png(_timeline(escalated=True), dpi=60)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] > 400 and image.size[1] > 150
    # The rows, top to bottom in plan order, are written into the PNG itself.
    assert image.text["Rows"] == "dallas, denver, austin"  # type: ignore[attr-defined]
    assert image.text["Title"].startswith("R1: full-outage")  # type: ignore[attr-defined]


def test_an_escalation_is_marked_in_red_and_only_then() -> None:
    assert _red_pixels(render_png(_timeline(escalated=True), dpi=60)) > 20
    assert _red_pixels(render_png(_timeline(escalated=False), dpi=60)) == 0
