"""A database that cannot take a unit of work, on real SQLite files: busy (another connection
holds the write lock), full, read-only, its file deleted or replaced. Each becomes its
``store.errors`` error, nothing of the unit is written, the outage is logged once, and a
deleted or replaced file is never written to or recreated."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from store.db import Database
from store.errors import (
    DatabaseBroken,
    DatabaseBusy,
    DatabaseFull,
    DatabaseGone,
    DatabaseReadOnly,
    DatabaseUnavailable,
    unavailable,
)
from store.models import GuildConfig
from tests.helpers import FAULTS, DatabaseFault, Fault, small_disk

ERRORS: dict[Fault, type[DatabaseUnavailable]] = {
    "busy": DatabaseBusy,
    "full": DatabaseFull,
    "read-only": DatabaseReadOnly,
    "deleted": DatabaseGone,
    "replaced": DatabaseGone,
}
#: a row that needs a new page whatever room the others leave (SQLite's pages are 4 KiB)
BIG = [10**15 + i for i in range(2000)]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'conductor.db'}", busy_timeout_ms=100)
    await database.create_all()
    yield database
    await database.dispose()


async def put(database: Database, guild_id: int) -> None:
    async with database.write() as session:
        session.add(GuildConfig(guild_id=guild_id, handoff_channel_ids=BIG))


async def guilds(database: Database) -> list[int]:
    async with database.read() as session:
        return list(
            await session.scalars(select(GuildConfig.guild_id).order_by(GuildConfig.guild_id))
        )


@pytest.mark.parametrize("kind", FAULTS)
async def test_each_fault_is_its_error_and_the_unit_writes_nothing(
    database: Database, kind: Fault
) -> None:
    await put(database, 1)
    fault = DatabaseFault(database)
    fault.start(kind)
    with pytest.raises(ERRORS[kind]) as raised:
        await put(database, 2)
    assert raised.value.reason == ERRORS[kind].reason
    assert "Nothing was changed" in raised.value.message and raised.value.detail
    fault.stop()
    assert await guilds(database) == [1]
    await put(database, 3)  # it takes writes again
    assert await guilds(database) == [1, 3]


@pytest.mark.parametrize("kind", ["deleted", "replaced"])
async def test_a_gone_file_is_not_read_either(database: Database, kind: Fault) -> None:
    await put(database, 1)
    fault = DatabaseFault(database)
    fault.start(kind)
    with pytest.raises(DatabaseGone, match="deleted or replaced"):
        await guilds(database)
    fault.stop()
    assert await guilds(database) == [1]


async def test_a_deleted_file_is_not_recreated_by_a_new_connection(database: Database) -> None:
    fault = DatabaseFault(database)
    before = set(fault.path.parent.iterdir())
    fault.start("deleted")
    await database.engine.dispose()  # every connection from now on is a new one
    for _ in range(3):
        with pytest.raises(DatabaseGone):
            await put(database, 2)
    assert not fault.path.exists()
    assert set(fault.path.parent.iterdir()) == before - {fault.path} | {fault.aside}
    fault.stop()
    await put(database, 3)
    assert await guilds(database) == [3]


async def test_a_replacing_file_is_left_as_it_is(database: Database) -> None:
    await put(database, 1)
    fault = DatabaseFault(database)
    fault.start("replaced")
    replacing = fault.path.read_bytes()
    await database.engine.dispose()
    with pytest.raises(DatabaseGone):
        await put(database, 2)
    # Byte for byte: opening it with SQLite would read the original's WAL beside it.
    assert fault.path.read_bytes() == replacing
    fault.stop()
    assert await guilds(database) == [1]


async def test_a_file_deleted_during_a_unit_of_work_gets_nothing_of_it(
    database: Database,
) -> None:
    fault = DatabaseFault(database)
    with pytest.raises(DatabaseGone):
        async with database.write() as session:
            session.add(GuildConfig(guild_id=7, handoff_channel_ids=[]))
            await session.flush()
            fault.start("deleted")  # after the unit's own writes, before its commit
    fault.stop()
    assert await guilds(database) == []


@pytest.mark.parametrize("kind", ["read-only", "deleted"])
async def test_an_outage_is_logged_once_and_its_end_once(
    database: Database, kind: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    fault = DatabaseFault(database)
    fault.start(kind)
    with caplog.at_level(logging.WARNING, logger="store.db"):
        for guild_id in range(5):
            with pytest.raises(DatabaseUnavailable):
                await put(database, guild_id)
        database.check()  # the timer's look
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1, caplog.text
        fault.stop()
        await put(database, 9)
        await put(database, 10)
    ends = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(ends) == 1, caplog.text
    assert ("back" if kind == "deleted" else "takes writes again") in ends[0].getMessage()


async def test_a_full_disk_is_full(tmp_path: Path) -> None:
    """Not a pragma: a real filesystem with no byte left (a small tmpfs)."""
    with small_disk(tmp_path / "disk") as fill:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'disk' / 'c.db'}")
        try:
            await database.create_all()
            await put(database, 1)
            fill(True)
            with pytest.raises(DatabaseFull, match="no space left"):
                await put(database, 2)
            fill(False)
            await put(database, 3)
            assert await guilds(database) == [1, 3]
        finally:
            await database.dispose()


def _driver_error(text: str, code: int | None = None) -> OperationalError:
    original = sqlite3.OperationalError(text)
    if code is not None:
        original.sqlite_errorcode = code
    return OperationalError("INSERT …", {}, original)


@pytest.mark.parametrize(
    ("text", "code", "kind"),
    [
        ("database is locked", 5, DatabaseBusy),
        ("database table is locked", 6, DatabaseBusy),
        ("database or disk is full", 13, DatabaseFull),
        ("attempt to write a readonly database", 8, DatabaseReadOnly),
        ("attempt to write a readonly database", 8 | (4 << 8), DatabaseGone),  # DBMOVED
        ("disk I/O error", 10 | (3 << 8), DatabaseBroken),  # IOERR_WRITE
        ("unable to open database file", 14, DatabaseBroken),
        # other drivers give no code: SQLite's words
        ("database is locked", None, DatabaseBusy),
        ("database or disk is full", None, DatabaseFull),
        ("attempt to write a readonly database", None, DatabaseReadOnly),
        ("disk I/O error", None, DatabaseBroken),
    ],
)
def test_sqlites_errors_are_named(
    text: str, code: int | None, kind: type[DatabaseUnavailable]
) -> None:
    found = unavailable(_driver_error(text, code))
    assert type(found) is kind and found.detail == text


def test_other_errors_are_not_an_outage() -> None:
    constraint = sqlite3.IntegrityError("UNIQUE constraint failed: releases.slug")
    constraint.sqlite_errorcode = 2067
    assert unavailable(IntegrityError("INSERT …", {}, constraint)) is None
    assert unavailable(_driver_error("no such table: tasks", 1)) is None
    assert unavailable(_driver_error("no such table: tasks")) is None


def test_a_busy_answer_says_so_and_that_nothing_changed() -> None:
    assert DatabaseBusy("database is locked").message == (
        "⛔ Conductor's database is busy: another process holds its write lock. Nothing was "
        "changed: try again in a moment."
    )
    again = DatabaseFull("x").again()
    assert type(again) is DatabaseFull and again.detail == "x"


def test_a_relative_path_is_watched_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Database("sqlite+aiosqlite:///rel.db").path == os.path.join(tmp_path, "rel.db")
    assert Database("sqlite+aiosqlite://").path is None  # in memory: nothing to watch


async def test_a_fault_of_writes_leaves_reads_alone(database: Database) -> None:
    """A read during a write-only fault (full, read-only, busy) still reads."""
    await put(database, 1)
    fault = DatabaseFault(database)
    kinds: tuple[Fault, ...] = ("busy", "full", "read-only")
    for kind in kinds:
        fault.start(kind)
        async with database.read() as session:
            assert await session.scalar(select(func.count()).select_from(GuildConfig)) == 1
        fault.stop()


async def test_a_new_connection_to_a_gone_file_is_refused_before_sqlite_opens_it(
    database: Database,
) -> None:
    """Below the units of work too: the engine's own connect never creates the file."""
    fault = DatabaseFault(database)
    await database.engine.dispose()
    fault.start("deleted")
    with pytest.raises(DatabaseGone):
        async with database.engine.connect():
            pass
    assert not fault.path.exists()
    fault.stop()
    async with database.engine.connect():
        pass
