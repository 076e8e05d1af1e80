"""The async database handle: one engine, one session factory, units of work.

SQLite gets WAL, a busy timeout, foreign keys and — for units of work that read and then
write — ``BEGIN IMMEDIATE``, so two writers never both read the old state and then collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry

from store.models import Base

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///conductor.db"
#: how long a SQLite writer waits for the lock before giving up
SQLITE_BUSY_TIMEOUT_MS = 10_000
_IMMEDIATE = "conductor_begin_immediate"


def _install_sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the driver so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
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


class SchemaNotAtHead(RuntimeError):
    """The database's schema is not the one this code was written for; the message names the
    command that fixes it."""


class Database:
    """Owns the engine. ``write()`` and ``read()`` each give one session for one unit of work;
    a session is never shared between concurrent tasks."""

    def __init__(self, url: str | URL = DEFAULT_DATABASE_URL, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = create_async_engine(self.url, echo=echo)
        if self.is_sqlite:
            _install_sqlite_pragmas(self.engine)
        self.sessions = async_sessionmaker(self.engine, class_=Session, expire_on_commit=False)
        # SQLite has one writer. Writers of this process queue here, in order, instead of
        # meeting in SQLite's busy handler, which backs off by sleeping (up to 100 ms a try)
        # and collapses throughput under concurrency. Other processes still get busy_timeout.
        self._writer: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if self.is_sqlite else contextlib.nullcontext()
        )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Session]:
        """A read-then-write unit of work: takes the write lock up front (SQLite), commits on
        success, rolls back on any exception."""
        async with self._writer, self.sessions() as session:
            await session.connection(execution_options={_IMMEDIATE: True})
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Session]:
        """A read-only unit of work (one consistent snapshot). Closing the session ends the
        transaction without expiring what was loaded, so rows stay readable afterwards."""
        async with self.sessions() as session:
            yield session

    async def create_all(self) -> None:
        """Create the tables from the models and stamp them at the migrations' head (tests,
        benchmarks and the demo; production uses alembic)."""
        from store.migrate import head  # noqa: PLC0415 - alembic loads only here

        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.execute(text(_VERSION_TABLE))
            await conn.execute(text("DELETE FROM alembic_version"))
            await conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": head()}
            )

    async def require_head(self) -> None:
        """Raise :class:`SchemaNotAtHead` unless the schema is at the migrations' head."""
        from store.migrate import head  # noqa: PLC0415 - alembic loads only here

        at, wanted = await self.revision(), await asyncio.to_thread(head)
        if at != wanted:
            where = f"at {at}" if at else "empty (no migration applied)"
            raise SchemaNotAtHead(
                f"the database is {where}, not at {wanted}: run `conductor db upgrade`"
            )

    async def revision(self) -> str | None:
        """The migration the schema is at (alembic's record), or None when there is none."""
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        except DBAPIError:
            return None  # no alembic_version table: never migrated
        return ", ".join(sorted(str(row[0]) for row in rows)) or None

    async def dispose(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
