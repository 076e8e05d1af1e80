"""The async database handle: one engine, one session factory, units of work.

SQLite gets WAL, a busy timeout, foreign keys and — for units of work that read and then
write — ``BEGIN IMMEDIATE``, so two writers never both read the old state and then collide.
PostgreSQL (``postgresql+asyncpg://``) gets the same rule from a transaction-scoped advisory
lock every write unit takes first (:data:`WRITE_LOCK_KEY`), waited for at most the busy
timeout (``lock_timeout``), and reads in one snapshot (``REPEATABLE READ``).
A unit of work that meets a busy, full, read-only or broken database raises one of
``store.errors``; so does one whose file was deleted or replaced while the process runs
(SQLite would go on writing into the orphaned file, or create an empty one), and one whose
server cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

from sqlalchemy import event, insert, inspect, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry

from store.errors import (
    DatabaseCrowded,
    DatabaseGone,
    DatabaseUnavailable,
    Reason,
    unavailable,
    unreachable,
)
from store.models import Base

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///conductor.db"
#: how long a writer waits for the lock before giving up (SQLite's busy_timeout,
#: PostgreSQL's lock_timeout)
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: PostgreSQL: the advisory lock every write unit takes first, so that units of work that read
#: and then write run one at a time across every process, as SQLite's BEGIN IMMEDIATE makes
#: them ("cond" in ASCII)
WRITE_LOCK_KEY = 0x636F6E64
#: PostgreSQL: how long opening a connection may take before the server counts as unreachable
#: (asyncpg's own default is 60 s). A server that is down refuses at once; this bounds one that
#: does not answer (a host gone from the network, a server stuck starting), so a command
#: during an outage is answered "cannot be reached" within seconds, not after a minute.
CONNECT_TIMEOUT_S = 5.0
_IMMEDIATE = "conductor_begin_immediate"


def _install_sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the driver so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            # Durable across a crash of the process; WAL makes NORMAL safe from corruption.
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_DEFERRED = "conductor_deferred_inserts"
#: alembic's own table, as alembic creates it
_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)


class Session(AsyncSession):
    """An ``AsyncSession`` that can queue append-only rows (stage events, raw handoffs) and
    write each kind as one bulk INSERT at the next explicit flush or commit.

    The unit of work inserts a row one statement at a time whenever it must read the new
    primary key back, and SQLite cannot batch ``INSERT … RETURNING`` in order; rows nobody
    needs the id of are queued here instead. Values are callables, resolved after the flush,
    so they may refer to the ids of rows created in the same unit of work."""

    def defer_insert(
        self, model: type[DeclarativeBase], values: Callable[[], dict[str, Any]]
    ) -> None:
        self.info.setdefault(_DEFERRED, []).append((model, values))

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        await super().flush(objects)
        await self._insert_deferred()

    async def commit(self) -> None:
        await self._insert_deferred()
        await super().commit()

    async def rollback(self) -> None:
        self.info.pop(_DEFERRED, None)
        await super().rollback()

    async def _insert_deferred(self) -> None:
        pending: list[tuple[type[DeclarativeBase], Callable[[], dict[str, Any]]]] = self.info.pop(
            _DEFERRED, []
        )
        if not pending:
            return
        await super().flush()
        rows: dict[type[DeclarativeBase], list[dict[str, Any]]] = {}
        for model, values in pending:
            rows.setdefault(model, []).append(values())
        # Parents before children: foreign keys are checked as each statement runs.
        order = {table: i for i, table in enumerate(next(iter(rows)).metadata.sorted_tables)}
        for model in sorted(rows, key=lambda m: order[m.__table__]):  # type: ignore[index]
            await self.execute(insert(model), rows[model])


def _sqlite_file(url: URL) -> str | None:
    """The absolute path of a file-backed SQLite database (None: in memory, a URI, or not
    SQLite)."""
    name = url.database
    if url.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    if name.startswith("file:") or url.query.get("uri"):
        return None
    return os.path.abspath(name)


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a file-backed SQLite database URL, absolute (None: in memory, a URI, or
    not SQLite): what a command that only reads checks exists, rather than let SQLite
    create it."""
    name = _sqlite_file(make_url(url))
    return Path(name) if name is not None else None


def _identity(path: str) -> tuple[int, int] | None:
    """What makes a file the same file: its device and inode (None: no file there)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


async def _rollback(session: AsyncSession) -> None:
    """Roll back; a database that cannot even do that has already lost the transaction."""
    try:
        await session.rollback()
    except Exception:
        log.debug("rollback failed", exc_info=True)


class SchemaNotAtHead(RuntimeError):
    """The database's schema is not the one this code was written for; the message names the
    command that fixes it."""


class Database:
    """Owns the engine. ``write()`` and ``read()`` each give one session for one unit of work;
    a session is never shared between concurrent tasks. Both raise
    :class:`~store.errors.DatabaseUnavailable` when the database cannot take the unit."""

    def __init__(
        self,
        url: str | URL = DEFAULT_DATABASE_URL,
        *,
        echo: bool = False,
        busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
        pool_size: int | None = None,
        pool_timeout: float | None = None,
    ) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.is_postgresql = self.url.get_backend_name() == "postgresql"
        self.busy_timeout_ms = busy_timeout_ms
        options: dict[str, Any] = {}
        if _sqlite_file(self.url) is not None or self.is_postgresql:
            # a pool of exactly ``pool_size`` connections (SQLite files and PostgreSQL pool;
            # memory databases keep SQLAlchemy's single connection)
            if pool_size is not None:
                options["pool_size"], options["max_overflow"] = pool_size, 0
            if pool_timeout is not None:
                options["pool_timeout"] = pool_timeout
        if self.is_postgresql:
            # the busy timeout: how long a statement waits for a lock (the write lock first)
            settings = {"lock_timeout": f"{int(busy_timeout_ms)}ms"}
            options["connect_args"] = {"server_settings": settings, "timeout": CONNECT_TIMEOUT_S}
            # a connection the server dropped (restarted, stopped) is found before it is
            # handed out, and replaced by a new one (or the unit is "unreachable")
            options["pool_pre_ping"] = True
        self.engine = create_async_engine(self.url, echo=echo, **options)
        #: the SQLite file, watched: deleted or replaced, it is refused (see :meth:`check`)
        self.path = _sqlite_file(self.url)
        self._identity: tuple[int, int] | None = None
        self._gone = False
        #: why the last unit of work failed, until one succeeds (logged once per outage)
        self._down: Reason | None = None
        if self.is_sqlite:
            _install_sqlite_pragmas(self.engine, busy_timeout_ms)
            if self.path is not None:
                self._watch_file(self.path)
        self.sessions = async_sessionmaker(self.engine, class_=Session, expire_on_commit=False)
        # One writer at a time (SQLite's lock, PostgreSQL's advisory lock). Writers of this
        # process queue here, in order, instead of meeting in SQLite's busy handler, which
        # backs off by sleeping (up to 100 ms a try) and collapses throughput under
        # concurrency, or each holding a pooled connection while they wait. Other processes
        # still get the busy timeout.
        self._writer = asyncio.Lock()

    def _watch_file(self, path: str) -> None:
        engine = self.engine.sync_engine

        @event.listens_for(engine, "do_connect")
        def _open_existing(
            _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]
        ) -> None:
            if self._identity is None:
                return  # the first connection may create the file (a fresh database)
            gone = self.check()
            if gone is not None:
                raise gone
            # From now on the file must exist: where it is missing, SQLite would otherwise
            # create an empty database and Conductor would carry on as if nothing happened.
            cargs[0] = f"file:{pathname2url(path)}?mode=rw"
            cparams["uri"] = True

        @event.listens_for(engine, "connect")
        def _remember(_dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
            if self._identity is None:
                self._identity = _identity(path)

    def check(self) -> DatabaseGone | None:
        """Whether the SQLite file opened first is still the one at its path: None when it
        is, else the error to raise. Logs one line when that changes, either way."""
        if self.path is None or self._identity is None:
            return None
        now = _identity(self.path)
        gone = now != self._identity
        if gone != self._gone:
            self._gone = gone
            if gone:
                log.error(
                    "the database file %s was %s while Conductor runs: nothing is read or "
                    "written until it is put back",
                    self.path,
                    "deleted" if now is None else "replaced",
                )
            else:
                log.warning("the database file %s is back: Conductor uses it again", self.path)
        if not gone:
            return None
        return DatabaseGone(f"{self.path} was {'deleted' if now is None else 'replaced'}")

    def _usable(self) -> None:
        gone = self.check()
        if gone is not None:
            raise gone

    def _unavailable(self, error: DBAPIError) -> DatabaseUnavailable | None:
        """What a failed unit of work means (a failed write may be the file gone); logged
        once per outage."""
        down = self.check() or unavailable(error)
        if down is not None:
            self._went_down(down)
        return down

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Session]:
        """A read-then-write unit of work: takes the write lock up front (SQLite), commits on
        success, rolls back on any exception."""
        self._usable()
        try:
            async with self._writer, self.sessions() as session:
                await self._begin(session, execution_options={_IMMEDIATE: True})
                if self.is_postgresql:
                    await session.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY}
                    )
                try:
                    yield session
                    # A deleted or replaced file takes writes without a word: look first.
                    self._usable()
                    await session.commit()
                except BaseException:
                    await _rollback(session)
                    raise
        except DBAPIError as error:
            down = self._unavailable(error)
            if down is None:
                raise
            raise down from error
        except PoolTimeout as error:
            raise DatabaseCrowded(str(error)) from error
        if self._down is not None:
            log.warning("the database takes writes again (it was %s)", self._down)
            self._down = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Session]:
        """A read-only unit of work (one consistent snapshot). Closing the session ends the
        transaction without expiring what was loaded, so rows stay readable afterwards."""
        self._usable()
        try:
            async with self.sessions() as session:
                if self.is_postgresql:
                    options = {"isolation_level": "REPEATABLE READ"}
                    await self._begin(session, execution_options=options)
                yield session
        except DBAPIError as error:
            down = self._unavailable(error)
            if down is None:
                raise
            raise down from error
        except PoolTimeout as error:
            raise DatabaseCrowded(str(error)) from error

    def sibling(
        self, *, pool_size: int = 2, pool_timeout: float = 1.0, busy_timeout_ms: int = 1_000
    ) -> Database:
        """Another handle on the same database with a small pool of its own (the board's:
        its reads never take a connection this handle's units of work need), waiting at most
        ``pool_timeout`` s for a free connection and ``busy_timeout_ms`` for a lock. A memory
        database has no second handle: this one is returned."""
        if self.is_sqlite and self.path is None:
            return self
        return Database(
            self.url,
            busy_timeout_ms=busy_timeout_ms,
            pool_size=pool_size,
            pool_timeout=pool_timeout,
        )

    async def _begin(self, session: Session, *, execution_options: dict[str, Any]) -> None:
        """Open the unit's connection and transaction. A server that refuses the connection
        (the driver's ``OSError``) is :class:`~store.errors.DatabaseUnreachable`; only here, so
        an ``OSError`` of the unit's own work is never taken for the database's."""
        try:
            await session.connection(execution_options=execution_options)
        except OSError as error:
            if self.is_sqlite:
                raise
            down = unreachable(error)
            self._went_down(down)
            raise down from error

    def _went_down(self, down: DatabaseUnavailable) -> None:
        if down.reason != self._down:
            if down.reason != "gone":  # check() said so already
                log.error("the database cannot take writes: %s (%s)", down.reason, down.detail)
            self._down = down.reason

    async def ping(self) -> None:
        """One trivial read: returns when the database answers, raises
        :class:`~store.errors.DatabaseUnavailable` (or the driver's error) when it cannot."""
        async with self.read() as session:
            await session.execute(text("SELECT 1"))

    async def create_all(self) -> None:
        """Create the tables from the models and stamp them at the migrations' head (tests,
        benchmarks and the demo; production uses alembic)."""
        from store.migrate import head  # noqa: PLC0415 - read from the migration scripts

        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.execute(text(_VERSION_TABLE))
            await conn.execute(text("DELETE FROM alembic_version"))
            await conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": head()}
            )

    async def require_head(self) -> None:
        """Raise :class:`SchemaNotAtHead` unless the schema is at the migrations' head."""
        from store.migrate import head  # noqa: PLC0415 - read from the migration scripts

        at, wanted = await self.revision(), await asyncio.to_thread(head)
        if at != wanted:
            where = f"at {at}" if at else "empty (no migration applied)"
            raise SchemaNotAtHead(
                f"the database is {where}, not at {wanted}: run `conductor db upgrade`"
            )

    async def revision(self) -> str | None:
        """The migration the schema is at (alembic's record), or None when there is none.
        Raises :class:`~store.errors.DatabaseUnavailable` when the database cannot be read."""
        try:
            async with self.engine.connect() as conn:
                if not await conn.run_sync(lambda c: inspect(c).has_table("alembic_version")):
                    return None  # never migrated
                rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        except DBAPIError as error:
            down = unavailable(error)
            if down is None:
                raise
            raise down from error
        except OSError as error:
            if self.is_sqlite:
                raise
            raise unreachable(error) from error
        return ", ".join(sorted(str(row[0]) for row in rows)) or None

    async def dispose(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
