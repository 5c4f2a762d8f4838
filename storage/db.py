"""Engines, sessions, units of work and migrations for SQLite (embedded) and PostgreSQL.

SQLite transactions: the sqlite3 driver is told not to manage transactions; instead a
transaction is begun with BEGIN IMMEDIATE just before the first write (or SAVEPOINT, or a
`SELECT ... FOR UPDATE`, which SQLite itself ignores). Reads before that see the latest committed
data, as on PostgreSQL at READ COMMITTED; writers queue on the busy timeout instead of failing
with "database is locked" when a read snapshot went stale; savepoints stay inside the transaction
that owns them.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, literal, make_url, select
from sqlalchemy.engine.interfaces import DBAPIConnection, ExecutionContext
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from bot.engine.errors import UserError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
# Future revisions get dated file names, e.g. 2026_12_01_0930_ab12cd34ef56_add_x.py.
FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s"

_WRITE_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT", "CREATE", "DROP",
                     "ALTER")
# Execution option that makes a read begin the SQLite write transaction (see repo's run lock).
SQLITE_WRITE_LOCK = "upgradebot_sqlite_write_lock"
_HOLDS_GATE = "upgradebot_holds_write_gate"  # connection info: this connection has the turn
POOL_SIZE = 20
PING_AFTER_IDLE_S = 2.0  # a pooled PostgreSQL connection idle longer is checked before use
_IDLE_SINCE = "upgradebot_idle_since"  # connection record info: when it was given back
# Session.info flag: this unit of work changed a run or a step; a worker may have work now.
WAKE_WORKER = "upgradebot_wake_worker"


SUPPORTED_BACKENDS = ("sqlite", "postgresql")
URL_FORMS = "sqlite:///FILE.db or postgresql+psycopg://USER:PASSWORD@HOST:5432/NAME"


class UnsupportedDatabase(UserError, ValueError):
    """A DATABASE_URL this bot cannot use; the message says what it takes."""


def normalize_url(url: str) -> str:
    """Return the URL with PostgreSQL URLs pointed at the psycopg 3 driver.

    A URL that does not parse, or names a database other than SQLite or PostgreSQL, raises
    UnsupportedDatabase (one line, without the URL's password).
    """
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise UnsupportedDatabase(f"DATABASE_URL is not a database URL; expected {URL_FORMS}"
                                  ) from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS and parsed.drivername != "postgres":
        raise UnsupportedDatabase(
            f"DATABASE_URL names a {parsed.get_backend_name()} database "
            f"({describe_url(url)}); this bot runs on SQLite or PostgreSQL: {URL_FORMS}")
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def describe_url(url: str) -> str:
    """The database URL as people may see it: the password masked."""
    try:
        return make_url(url.strip()).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"


def is_postgres(bind: Engine | Connection | Session) -> bool:
    """Tell whether an engine, connection or session talks to PostgreSQL."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


def make_engine(url: str) -> Engine:
    """Create an engine configured for the bot (SQLite pragmas, PostgreSQL idle ping)."""
    url = normalize_url(url)
    # Enough pooled connections for a worker's visits, its dispatcher, delivery and the HTTP
    # handlers: past the pool, every unit of work would open and close a connection of its own.
    pool = {"pool_size": POOL_SIZE, "max_overflow": 10}
    if make_url(url).get_backend_name() != "sqlite":
        engine = create_engine(url, **pool)
        event.listen(engine.pool, "connect", _note_checkin)  # a new connection needs no ping
        event.listen(engine.pool, "checkin", _note_checkin)
        event.listen(engine.pool, "checkout", functools.partial(_ping_if_idle, engine))
        return engine
    in_memory = make_url(url).database in (None, "", ":memory:")  # one connection, no pool
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        **({} if in_memory else pool)
    )
    gate = _WriteGate()
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "before_cursor_execute", gate.begin_before_write)
    event.listen(engine, "commit", gate.transaction_ended)
    event.listen(engine, "rollback", gate.transaction_ended)
    event.listen(engine.pool, "reset", gate.connection_reset)
    event.listen(engine.pool, "close", gate.connection_closed)
    return engine


def _note_checkin(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(engine: Engine, dbapi_connection: DBAPIConnection,
                  record: ConnectionPoolEntry, _proxy: Any) -> None:
    """Check a pooled PostgreSQL connection that sat idle before handing it out.

    What `pool_pre_ping` does, except for connections given back moments ago: under load every
    unit of work paid a round trip for it. A server that went away since is noticed here (the
    pool then opens a new connection); one that goes away mid-burst fails that unit of work,
    as it would have with a ping, and the pool is renewed.
    """
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return
    try:
        alive = engine.dialect.do_ping(dbapi_connection)
    except engine.dialect.loaded_dbapi.Error as exc:
        raise DisconnectionError(f"pooled connection is gone: {type(exc).__name__}") from exc
    if not alive:
        raise DisconnectionError("pooled connection is gone")


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """Set the pragmas every SQLite connection needs and take over transaction control."""
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.close()


class _WriteGate:
    """Queues this process's SQLite writers on a lock before BEGIN IMMEDIATE.

    SQLite lets one writer in at a time and makes the others poll with growing sleeps (up to
    0.1 s each), so under load the database sat idle while a dozen threads slept. Threads of one
    process now wait their turn on a lock handed over at once; other processes still queue on
    the busy timeout. A turn not given back within the busy timeout (it never should be) is
    not waited for: the writer falls back to SQLite's own queue.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def begin_before_write(
        self, conn: Connection, cursor: Any, statement: str, _parameters: Any,
        context: ExecutionContext | None, _executemany: bool,
    ) -> None:
        """Begin an IMMEDIATE transaction before the first write of a SQLAlchemy transaction."""
        dbapi_connection = cursor.connection
        if dbapi_connection.in_transaction or not conn.in_transaction():
            return
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # nobody will COMMIT: let each statement stand alone
        wants_lock = context is not None and context.execution_options.get(SQLITE_WRITE_LOCK,
                                                                           False)
        if wants_lock or statement.lstrip()[:9].upper().startswith(_WRITE_STATEMENTS):
            if not conn.info.get(_HOLDS_GATE) and self._lock.acquire(
                    timeout=SQLITE_BUSY_TIMEOUT_S):
                conn.info[_HOLDS_GATE] = True
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._give_back(conn.info)
                raise

    def transaction_ended(self, conn: Connection) -> None:
        """Hand the turn to the next writer as the transaction commits or rolls back.

        (Just before the COMMIT itself: the next writer may wait a millisecond on SQLite.)
        """
        self._give_back(conn.info)

    def connection_reset(self, dbapi_connection: DBAPIConnection,
                         connection_record: ConnectionPoolEntry, reset_state: Any) -> None:
        """A connection given back to the pool mid-transaction gives its turn back."""
        self._give_back(connection_record.info)

    def connection_closed(self, dbapi_connection: DBAPIConnection,
                          connection_record: ConnectionPoolEntry) -> None:
        """A connection closed mid-transaction gives its turn back."""
        self._give_back(connection_record.info)

    def _give_back(self, info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS_GATE, False):
            self._lock.release()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Create the session factory; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit it on success, roll back and re-raise on error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(*, session: Session) -> None:
    """Run a trivial query (raises when the database cannot be reached)."""
    session.execute(select(literal(1)))


def alembic_config(url: str) -> Config:
    """Build the alembic configuration in code: no alembic.ini needed in the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", FILE_TEMPLATE)
    # Passed as an attribute, not an ini option, so '%' in a password needs no escaping.
    config.attributes["url"] = normalize_url(url)
    return config


def upgrade_database(url: str) -> None:
    """Migrate the database at `url` to the newest revision."""
    config = alembic_config(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
