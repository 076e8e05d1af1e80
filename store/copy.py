"""Move a team's history from one database to another: every table, row for row.

:func:`copy_database` copies Conductor's tables from ``source`` to ``target`` (SQLite to
PostgreSQL, and back, or any two URLs the store takes), both at this code's migration head.
The target must hold no row of Conductor's; an empty one (never migrated) is migrated first.
Everything is written in one transaction on the target: a copy that fails midway leaves the
target as it was. The tables go parents first (the foreign keys' order), each read from the
source in its primary key's order in batches; a PostgreSQL target's sequences are moved past
the copied ids, so the next row it makes does not collide. The counts are checked on the
target before the commit.

The source is only read. Nothing here needs Discord or the domain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Integer, Table, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from store import migrate
from store.db import Database
from store.models import Base

#: rows read and written at once
BATCH = 1000


class CopyRefused(Exception):
    """The copy cannot be made as asked; the text says why and what to do. Nothing was
    written."""


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table copied: its name and how many rows."""

    table: str
    rows: int


#: told as the copy goes: (table, rows copied so far, rows in all)
Progress = Callable[[str, int, int], None]


def tables() -> list[Table]:
    """Conductor's tables, parents before children."""
    return list(Base.metadata.sorted_tables)


async def check_copy(source: str, target: str) -> bool:
    """Refuse what cannot be copied (raises :class:`CopyRefused`); returns whether the target
    is empty and must be migrated first. Read-only on both."""
    if _same(source, target):
        raise CopyRefused("the source and the target are the same database")
    head = migrate.head()
    at = await asyncio.to_thread(migrate.current, source)
    if at is None:
        raise CopyRefused("the source database is empty: there is nothing to copy")
    if at != head:
        raise CopyRefused(
            f"the source is at migration {at}, not this Conductor's head {head}: "
            "`conductor db upgrade --url SOURCE` first"
        )
    there = await asyncio.to_thread(migrate.current, target)
    if there is not None and there != head:
        raise CopyRefused(
            f"the target is at migration {there}, not {head}: upgrade it, or copy into an "
            "empty database"
        )
    if there is not None:
        database = Database(target)
        try:
            async with database.engine.connect() as conn:
                held = [(t.name, n) for t in tables() if (n := await _count(conn, t))]
        finally:
            await database.dispose()
        if held:
            shown = ", ".join(f"{name} ({n} rows)" for name, n in held[:5])
            raise CopyRefused(f"the target already holds data: {shown}; copy into an empty one")
    return there is None


async def copy_database(
    source: str, target: str, *, progress: Progress | None = None, batch: int = BATCH
) -> list[TableCopy]:
    """Copy every table of ``source`` into ``target`` (see the module); the tables copied,
    in order. Raises :class:`CopyRefused` before writing anything when it cannot."""
    if await check_copy(source, target):
        await migrate.upgrade_async(target)
    reading, writing = Database(source), Database(target)
    copied: list[TableCopy] = []
    try:
        async with reading.engine.connect() as src, writing.engine.begin() as dst:
            if writing.is_sqlite:
                # in the transaction: the target holds no row, so nothing can be orphaned
                await dst.execute(text("PRAGMA defer_foreign_keys = ON"))
            for table in tables():
                total = await _count(src, table)
                done = 0
                if progress is not None:
                    progress(table.name, 0, total)
                order = list(table.primary_key.columns) or list(table.columns)
                result = await src.stream(select(table).order_by(*order))
                async for rows in result.mappings().partitions(batch):
                    await dst.execute(insert(table), [dict(row) for row in rows])
                    done += len(rows)
                    if progress is not None:
                        progress(table.name, done, total)
                there = await _count(dst, table)
                if there != total or done != total:
                    raise CopyRefused(
                        f"{table.name}: {total} rows in the source, {done} read, {there} in "
                        "the target: nothing was written"
                    )
                copied.append(TableCopy(table.name, total))
            if writing.url.get_backend_name() == "postgresql":
                await _move_sequences(dst)
    finally:
        await reading.dispose()
        await writing.dispose()
    return copied


async def count_rows(url: str) -> dict[str, int]:
    """Every table's row count (to check a copy after it is committed)."""
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            return {t.name: await _count(conn, t) for t in tables()}
    finally:
        await database.dispose()


async def _count(conn: AsyncConnection, table: Table) -> int:
    return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _move_sequences(conn: AsyncConnection) -> None:
    """Each serial id's sequence past the largest id copied (PostgreSQL keeps them apart
    from the rows: explicit ids leave them at 1)."""
    for table in tables():
        for column in table.primary_key.columns:
            if column.autoincrement is False or not isinstance(column.type, Integer):
                continue
            largest = select(func.max(column)).scalar_subquery()
            sequence = func.pg_get_serial_sequence(table.name, column.name)
            await conn.execute(select(func.setval(sequence, func.coalesce(largest, 0) + 1, False)))


def _same(source: str, target: str) -> bool:
    a, b = make_url(source), make_url(target)
    return a.render_as_string(hide_password=False) == b.render_as_string(hide_password=False)
