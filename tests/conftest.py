"""Fixtures shared by the whole suite: a clean environment and migrated databases.

`database_url` runs a test twice, on SQLite and on PostgreSQL; the PostgreSQL half is skipped
unless TEST_DATABASE_URL points at a server where the test may create databases, e.g.
TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from storage.db import make_engine, make_session_factory, normalize_url, upgrade_database
from tests.support.databases import fresh_sqlite

_CLEARED_PREFIXES = ("SLACK_", "DMA_")
_CLEARED_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "DATABASE_URL",
                  "UPGRADEBOT_CONFIG")


@event.listens_for(Engine, "connect")
def _sqlite_without_fsync(dbapi_connection: Any, _record: Any) -> None:
    """Tests' SQLite files need no durability: skip the fsync of every commit.

    Set on every engine the test process makes (after the bot's own pragmas: WAL, foreign
    keys, busy timeout, which stay as they are); processes that tests start are unaffected.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the slow tests first, so that `-n 2` ends on short tests instead of a long one."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide proxies (slack-sdk ignores NO_PROXY), Slack/DMA credentials and bot settings."""
    for name in list(os.environ):
        if name in _CLEARED_NAMES or name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name)


@dataclass
class _PostgresServer:
    """The TEST_DATABASE_URL server, and a template database migrated once per test session."""

    admin: Engine
    server_url: str
    template: str | None = None

    def create(self, name: str, template: str | None = None) -> str:
        """Create a database (a copy of `template` if given) and return its URL."""
        copy = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
            # A throw-away database needs no durability: commits return before the WAL flush
            # (visibility and locking are unchanged), which halves the cost of a commit.
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it."""
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[_PostgresServer | None]:
    """Connect to TEST_DATABASE_URL's server and migrate a template database there, or None."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        yield None
        return
    server_url = normalize_url(server_url)
    server = _PostgresServer(
        create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool), server_url)
    template = _unique_name("upgradebot_template")
    try:
        # Migrating once and copying is several times faster than migrating for every test.
        upgrade_database(server.create(template))
        server.template = template
        yield server
    finally:
        server.drop(template)
        server.admin.dispose()


def _postgres_database(server: _PostgresServer | None) -> Iterator[str]:
    """Yield a fresh database migrated to head on the TEST_DATABASE_URL server; drop it after."""
    if server is None:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    name = _unique_name("upgradebot_test")
    try:
        # A copy of the migrated template is at head (tests/storage/test_db.py checks it once).
        yield server.create(name, template=server.template)
    finally:
        server.drop(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, _postgres_server: _PostgresServer | None
) -> Iterator[str]:
    """Yield the URL of an empty database migrated to head, on each backend."""
    if request.param == "sqlite":
        yield fresh_sqlite(tmp_path)  # a copy of a template migrated once per process
    else:
        yield from _postgres_database(_postgres_server)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Return the URL of a fresh SQLite database at head, for scenarios run on SQLite only.

    Whole-upgrade scenarios cost seconds each. Those that check engine and worker decisions run
    here; a representative few (both strategies, an escalation and its retry, a pause and its
    resume, the vendor-order refusals) also run on PostgreSQL through `database_url`, beside
    the storage tests and the worker-process tests that hold PostgreSQL's claims and locks.
    """
    return fresh_sqlite(tmp_path)


@pytest.fixture
def postgres_url(_postgres_server: _PostgresServer | None) -> Iterator[str]:
    """Yield the URL of an empty PostgreSQL database migrated to head (skips without one)."""
    yield from _postgres_database(_postgres_server)


@pytest.fixture
def session_factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Yield a session factory on `database_url`; its engine is disposed afterwards."""
    engine = make_engine(database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Any]:
    """The in-process Slack workspace: the bot's app, a Slack double, the simulator, a worker."""
    from tests.support.workspace import workspace  # heavy: only the tests that use it load it

    with workspace(tmp_path) as built:
        yield built
