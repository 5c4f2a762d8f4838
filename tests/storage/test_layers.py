"""Storage stands below everything but the pure engine and the DMA's value types."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# bot.dma.errors and bot.dma.fields come with bot.dma.models (its parse errors and field readers).
ALLOWED_BOT = ("bot.engine", "bot.dma.models", "bot.dma.errors", "bot.dma.fields")


def _storage_modules() -> list[str]:
    sources = (ROOT / "storage").rglob("*.py")
    return sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in sources if "migrations" not in p.parts)


def test_storage_imports_only_the_engine_and_the_dma_models_of_the_bot() -> None:
    modules = _storage_modules()
    assert {"storage.models", "storage.repo", "storage.repo.claims"} <= set(modules)
    probe = (f"import importlib, json, sys\n"
             f"for m in {modules!r}: importlib.import_module(m)\n"
             f"print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, text=True,
                                       capture_output=True, cwd=ROOT, timeout=60).stdout)
    above = [m for m in loaded
             if m.split(".")[0] == "handlers"
             or (m.startswith("bot.") and m != "bot.dma"
                 and not any(m == a or m.startswith(a + ".") for a in ALLOWED_BOT))]
    assert above == []
