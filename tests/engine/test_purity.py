"""The engine decides and does no I/O: importing it pulls in no transport, database or storage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "bot" / "engine"
FORBIDDEN = ("requests", "slack_sdk", "slack_bolt", "sqlalchemy", "storage", "handlers",
             "apscheduler", "urllib3", "socket", "bot.dma.client", "bot.simulator")


def test_importing_every_engine_module_loads_nothing_that_does_io() -> None:
    modules = sorted(f"bot.engine.{p.stem}" for p in ENGINE.glob("*.py") if p.stem != "__init__")
    assert "bot.engine.planner" in modules and "bot.engine.verification" in modules
    probe = (f"import importlib, json, sys\n"
             f"for m in {modules!r}: importlib.import_module(m)\n"
             f"print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, text=True,
                                       capture_output=True, cwd=ENGINE.parents[1],
                                       timeout=60).stdout)
    leaked = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert leaked == []
