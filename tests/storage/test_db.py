"""Engines, URLs, migrations and the UTC column type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import (
    alembic_config,
    is_postgres,
    make_engine,
    make_session_factory,
    normalize_url,
    unit_of_work,
    upgrade_database,
)
from storage.models import Base, Run, SlackEvent, Step
from tests.storage.factories import T0, make_run

TABLES = {"runs", "steps", "step_claims", "approvals", "slack_events", "audit_entries",
          "outbox_messages", "territory_snapshots", "step_durations", "escalations", "dma_requests",
          "reverifications"}


@pytest.mark.parametrize(("given", "expected"), [
    ("postgresql://bot:p%40ss@db:5432/bot", "postgresql+psycopg://bot:p%40ss@db:5432/bot"),
    ("postgres://bot@db/bot", "postgresql+psycopg://bot@db/bot"),
    ("postgresql+psycopg://bot@db/bot", "postgresql+psycopg://bot@db/bot"),
    ("sqlite:///upgradebot.db", "sqlite:///upgradebot.db"),
])
def test_normalize_url_points_postgres_at_psycopg_and_keeps_the_password(
    given: str, expected: str
) -> None:
    assert normalize_url(given) == expected


def _schema_differences(url: str, metadata: sa.MetaData) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_migrations_create_exactly_what_the_models_describe(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == TABLES | {"alembic_version"}
    engine.dispose()
    assert _schema_differences(database_url, Base.metadata) == []


def test_schema_comparison_notices_a_column_the_migrations_lack(database_url: str) -> None:
    # The comparison above is only worth something if it can see a difference.
    metadata = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    metadata.tables["runs"].append_column(sa.Column("colour", sa.String(), nullable=True))
    diffs = _schema_differences(database_url, metadata)
    assert [d[0] for d in diffs] == ["add_column"]  # type: ignore[index]


def test_upgrade_runs_from_any_directory_and_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no alembic.ini here
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade_database(url)
    upgrade_database(url)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    engine = make_engine(url)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head
    engine.dispose()


def test_the_fixture_databases_are_at_head(database_url: str) -> None:
    # Fixtures copy a template migrated once; a copy must be at head, so upgrading is a no-op.
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    upgrade_database(database_url)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head
    engine.dispose()


def test_sqlite_enforces_foreign_keys_and_uses_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    assert not is_postgres(engine)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("PRAGMA journal_mode")) == "wal"
    factory = make_session_factory(engine)
    with pytest.raises(IntegrityError), unit_of_work(factory) as session:
        session.add(Step(run_id=999, seq=0, key="k", kind="k", title="t"))
    engine.dispose()


def test_datetimes_come_back_as_the_same_instant_in_utc(
    session_factory: sessionmaker[Session],
) -> None:
    eastern = timezone(timedelta(hours=-5))
    start = datetime(2026, 11, 25, 18, 30, tzinfo=eastern)
    with unit_of_work(session_factory) as session:
        run_id = make_run(session, window_start=start).id
    with session_factory() as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert run.window_start == start
        assert run.window_start is not None and run.window_start.tzinfo == UTC
        assert run.window_start.hour == 23
        assert run.created_at == T0 and run.created_at.tzinfo == UTC
        # Comparisons in SQL use the same conversion.
        later = session.scalars(sa.select(Run.id).where(Run.window_start > T0)).all()
        assert later == [run_id]


def test_naive_datetimes_are_refused(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(StatementError, match="naive datetime refused"), \
            unit_of_work(session_factory) as session:
        make_run(session, created_at=datetime(2026, 11, 25, 22, 0))


def test_unit_of_work_commits_or_rolls_back(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        make_run(session, target="dallas")
    with pytest.raises(RuntimeError), unit_of_work(session_factory) as session:
        make_run(session, target="denver")
        raise RuntimeError("boom")
    with session_factory() as session:
        assert [r.target for r in repo.list_runs(session=session)] == ["dallas"]


def test_a_savepoint_stays_inside_the_transaction_that_rolls_back(
    session_factory: sessionmaker[Session],
) -> None:
    # SQLite's driver would otherwise commit a leading SAVEPOINT on its own.
    with pytest.raises(RuntimeError), unit_of_work(session_factory) as session:
        assert repo.record_event_id(session=session, event_id="Ev1", kind="reaction", at=T0)
        raise RuntimeError("boom")
    with session_factory() as session:
        assert session.get(SlackEvent, "Ev1") is None


def test_a_pooled_postgres_connection_killed_while_idle_is_replaced_unseen(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server dropped an idle pooled connection (a restart, a timeout): the next unit of
    work gets a live one, as pool_pre_ping gave; a connection given back moments ago is not
    pinged at all."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server's connection; SQLite has none to lose")
    engine = make_engine(database_url)
    pings: list[object] = []
    real_ping = engine.dialect.do_ping

    def counted_ping(connection: Any) -> bool:
        pings.append(connection)
        return real_ping(connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
    sessions = make_session_factory(engine)
    try:
        with unit_of_work(sessions) as session:
            victim = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with unit_of_work(sessions) as session:  # given back moments ago: no ping
            assert session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() == victim
        assert pings == []
        killer = make_engine(database_url)
        with killer.connect() as other:
            assert other.execute(sa.text("SELECT pg_terminate_backend(:p)"),
                                 {"p": victim}).scalar_one()
        killer.dispose()
        monkeypatch.setattr("storage.db.PING_AFTER_IDLE_S", 0.0)  # as if idle for long
        with unit_of_work(sessions) as session:
            assert session.execute(sa.text("SELECT 1")).scalar_one() == 1
            assert session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != victim
        assert len(pings) >= 1
    finally:
        engine.dispose()
