"""What a downgrade would drop, and a copy of the database before it does.

:func:`plan_downgrade` tells, without touching the database, which of its tables and columns
a downgrade would drop and how many rows (values) each holds: it builds a scratch SQLite at
the database's revision, downgrades that scratch the same way (so ``-1`` or a revision name
mean what they will mean), compares the two schemas, and counts what the live database holds
in each table and column that goes. The migrations make the same tables and columns on SQLite
and PostgreSQL, so the scratch stands for either.

:func:`backup_sqlite` copies a SQLite database beside its file with sqlite3's backup API (a
consistent copy, what the WAL holds included, while others may be writing). PostgreSQL gets
no file: :func:`pg_dump_command` is what to run first.

Call these from synchronous code (alembic's ``env.py`` runs its own event loop).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sqlite3
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.request import pathname2url

from sqlalchemy import column, func, inspect, select, table
from sqlalchemy.engine import make_url

from store import migrate
from store.db import Database, sqlite_file

#: alembic's own table: not Conductor's data
_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True, slots=True)
class Loss:
    """A table (``column`` None) or a column a downgrade drops, and the rows (for a column:
    the values that are not NULL) the database holds in it."""

    table: str
    column: str | None
    rows: int

    @property
    def name(self) -> str:
        return self.table if self.column is None else f"{self.table}.{self.column}"


@dataclass(frozen=True, slots=True)
class DowngradePlan:
    """A downgrade from ``current`` to ``target`` (None: nothing applied, ``base``), and
    everything it drops, tables first."""

    current: str | None
    target: str | None
    dropped: tuple[Loss, ...]

    @property
    def losses(self) -> tuple[Loss, ...]:
        """What is dropped with data in it."""
        return tuple(loss for loss in self.dropped if loss.rows)


def plan_downgrade(url: str, revision: str) -> DowngradePlan:
    """What downgrading the database at ``url`` to ``revision`` would drop, the database
    only read. Raises alembic's ``CommandError`` for a revision it does not know."""
    current = migrate.current(url)
    if current is None:
        return DowngradePlan(current=None, target=None, dropped=())
    with tempfile.TemporaryDirectory(prefix="conductor-downgrade-") as scratch:
        scratch_url = f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"
        migrate.upgrade(scratch_url, current)
        before = _schema(Path(scratch) / "scratch.db")
        migrate.downgrade(scratch_url, revision)
        target = migrate.current(scratch_url)
        after = _schema(Path(scratch) / "scratch.db")
    tables = sorted(set(before) - set(after))
    columns = sorted(
        (table, column)
        for table, kept in after.items()
        if table in before
        for column in before[table] - kept
    )
    dropped = asyncio.run(_count(url, tables, columns))
    return DowngradePlan(current=current, target=target, dropped=dropped)


def _schema(path: Path) -> dict[str, set[str]]:
    """Each of Conductor's tables in a SQLite file, with its columns."""
    with sqlite3.connect(path) as conn:
        names = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name != _VERSION_TABLE and not name.startswith("sqlite_")
        ]
        schema = {
            name: {row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')} for name in names
        }
    conn.close()
    return schema


async def _count(url: str, tables: list[str], columns: list[tuple[str, str]]) -> tuple[Loss, ...]:
    """The rows of each table and the values of each column, where the live database has
    them (a table it lacks holds nothing)."""
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            live = await conn.run_sync(
                lambda sync: {
                    name: {column["name"] for column in inspect(sync).get_columns(name)}
                    for name in inspect(sync).get_table_names()
                }
            )
            losses = []
            for name in tables:
                if name in live:
                    rows = await conn.scalar(select(func.count()).select_from(table(name)))
                    losses.append(Loss(name, None, int(rows or 0)))
            for name, kept in columns:
                if kept in live.get(name, ()):
                    values = await conn.scalar(
                        select(func.count())
                        .select_from(table(name, column(kept)))
                        .where(column(kept).is_not(None))
                    )
                    losses.append(Loss(name, kept, int(values or 0)))
    finally:
        await database.dispose()
    return tuple(losses)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def backup_sqlite(url: str, label: str) -> Path:
    """A consistent copy of the SQLite database at ``url`` beside its file,
    ``<file>.before-downgrade-<label>-<UTC stamp>``, readable as the file is; returns its
    path. Raises ``OSError`` or ``sqlite3.Error`` when it cannot be written (then no file is
    left behind)."""
    path = sqlite_file(url)
    if path is None:
        raise ValueError(f"not a SQLite database file: {url}")
    backup = path.with_name(f"{path.name}.before-downgrade-{label}-{_stamp()}")
    for n in range(2, 100):  # two downgrades in one second: another name, never over one
        if not backup.exists():
            break
        backup = backup.with_name(f"{path.name}.before-downgrade-{label}-{_stamp()}-{n}")
    # mode=rw: the file must exist (checked before), and is never created here
    source = sqlite3.connect(f"file:{pathname2url(str(path))}?mode=rw", uri=True)
    try:
        copy = sqlite3.connect(backup)
        try:
            source.backup(copy)
        finally:
            copy.close()
        os.chmod(backup, stat.S_IMODE(path.stat().st_mode))
    except BaseException:
        backup.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return backup


def pg_dump_command(url: str, label: str) -> str:
    """The ``pg_dump`` that keeps a copy of the PostgreSQL database at ``url`` (its host,
    port, user and database; never its password: pg_dump asks, or reads ``~/.pgpass``)."""
    parts = make_url(url)
    command = ["pg_dump", "--format=custom"]
    command.append(
        f"--file={parts.database or 'conductor'}-before-downgrade-{label}-{_stamp()}.dump"
    )
    if parts.host:
        command.append(f"--host={parts.host}")
    if parts.port:
        command.append(f"--port={parts.port}")
    if parts.username:
        command.append(f"--username={parts.username}")
    command.append(parts.database or "")
    return shlex.join(command)
