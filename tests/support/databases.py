"""Fresh SQLite databases at head without running the migrations for every test.

The migrations run once per test process into a template file; each test gets a byte copy of it
(a fraction of a millisecond instead of tens of milliseconds of alembic). The PostgreSQL fixture
does the same with a template database.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
import threading
from contextlib import closing
from pathlib import Path

from storage.db import upgrade_database

_lock = threading.Lock()
_template: Path | None = None


def _migrated_template() -> Path:
    """Migrate the template once (per process) and return its path."""
    global _template
    with _lock:
        if _template is None:
            folder = tempfile.TemporaryDirectory(prefix="upgradebot-template-")
            atexit.register(folder.cleanup)
            path = Path(folder.name) / "template.db"
            upgrade_database(f"sqlite:///{path}")
            # One self-contained file (no -wal beside it) that a plain copy captures whole; the
            # bot's engine switches each copy back to WAL when it connects.
            with closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA journal_mode=DELETE")
            _template = path
        return _template


def fresh_sqlite(directory: Path, name: str = "upgradebot.db") -> str:
    """Return the URL of a new SQLite database at head in `directory`."""
    target = directory / name
    shutil.copyfile(_migrated_template(), target)
    return f"sqlite:///{target}"
