"""The default rehearsal, run once per test process for the tests that read its output."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import main


@dataclass(frozen=True)
class Rehearsed:
    """What `upgradebot rehearse --timeline FILE` returned, printed and drew."""

    status: int
    out: str
    timeline: Path


@pytest.fixture(scope="session")
def default_rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Rehearsed:
    """`upgradebot rehearse` on its embedded default, with a timeline picture.

    A rehearsal costs seconds of CPU whatever its speed: the tests that check its printout and
    its picture share one (the options they need do not change what is rehearsed).
    """
    picture = tmp_path_factory.mktemp("rehearsal") / "rehearsal.png"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["rehearse", "--speed", "100000", "--timeline", str(picture)])
    return Rehearsed(status, out.getvalue(), picture)
