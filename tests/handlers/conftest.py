"""The in-process workspace for the Slack handler tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.handlers.workspace import Workspace, workspace


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with workspace(tmp_path) as built:
        yield built
