"""PostgreSQL's side of ``store.db``, on a real server: a write unit holds the one write lock
(as SQLite's ``BEGIN IMMEDIATE`` does), so writers of two engines run one after the other and
a writer that waits out its busy timeout is ``DatabaseBusy``; a read is one snapshot; a
read-only database, a server that refuses the connection, and one restarted under the pool
are their errors, with nothing written; PostgreSQL's error codes are named."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from store.db import WRITE_LOCK_KEY, Database
from store.errors import (
    DatabaseBroken,
    DatabaseBusy,
    DatabaseFull,
    DatabaseReadOnly,
    DatabaseUnavailable,
    DatabaseUnreachable,
    unavailable,
)
from store.models import GuildConfig
from tests.helpers import DatabaseFault, write_aside
from tests.postgres import Cluster

pytestmark = pytest.mark.backends("postgresql")


@pytest.fixture
async def short(db_url: str, db: Database) -> AsyncIterator[Database]:
    """A second engine on the test's database, waiting at most 200 ms for the write lock."""
    database = Database(db_url, busy_timeout_ms=200)
    yield database
    await database.dispose()


async def put(database: Database, guild_id: int) -> None:
    async with database.write() as session:
        session.add(GuildConfig(guild_id=guild_id, handoff_channel_ids=[]))


async def guilds(database: Database) -> list[int]:
    async with database.read() as session:
        return list(
            await session.scalars(select(GuildConfig.guild_id).order_by(GuildConfig.guild_id))
        )


async def test_a_writer_waits_for_the_one_before_it_and_reads_what_it_wrote(
    db: Database, db_url: str
) -> None:
    """Two engines (two processes): the second writer's unit starts only once the first
    committed, so its read sees the first's row: read-then-write units never interleave."""
    other = Database(db_url)
    try:
        first_in = asyncio.Event()
        release = asyncio.Event()
        seen: list[int] = []

        async def first() -> None:
            async with db.write() as session:
                first_in.set()
                await release.wait()
                session.add(GuildConfig(guild_id=1, handoff_channel_ids=[]))

        async def second() -> None:
            await first_in.wait()
            async with other.write() as session:
                count = await session.scalar(select(func.count()).select_from(GuildConfig))
                seen.append(int(count or 0))
                session.add(GuildConfig(guild_id=2, handoff_channel_ids=[]))

        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await first_in.wait()
        # the second is waiting on the lock, not running: let it try for a while
        waiting = await _waiting_on_the_write_lock(db, within=60.0)
        assert waiting == 1 and seen == []
        release.set()
        await asyncio.gather(*tasks)
        assert seen == [1]
        assert await guilds(db) == [1, 2]
    finally:
        await other.dispose()


async def _waiting_on_the_write_lock(db: Database, *, within: float) -> int:
    """How many sessions wait for the advisory write lock, once one does (polled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        async with db.engine.connect() as conn:
            count = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND NOT granted AND objid = :key"
                ),
                {"key": WRITE_LOCK_KEY},
            )
        if count or loop.time() > deadline:
            return int(count or 0)
        await asyncio.sleep(0.05)


async def test_busy_is_the_write_lock_held_past_the_busy_timeout(short: Database) -> None:
    await put(short, 1)
    fault = DatabaseFault(short)
    fault.start("busy")
    try:
        with pytest.raises(DatabaseBusy) as raised:
            await put(short, 2)
        assert "lock timeout" in raised.value.detail
        assert await guilds(short) == [1]  # reads go on
    finally:
        fault.stop()
    await put(short, 3)
    assert await guilds(short) == [1, 3]


async def test_read_only_is_its_error_and_nothing_is_written(db: Database) -> None:
    await put(db, 1)
    fault = DatabaseFault(db)
    fault.start("read-only")
    try:
        with pytest.raises(DatabaseReadOnly) as raised:
            await put(db, 2)
        assert "read-only transaction" in raised.value.detail
    finally:
        fault.stop()
    assert await guilds(db) == [1]
    await put(db, 3)
    assert await guilds(db) == [1, 3]


async def test_a_server_that_refuses_the_connection_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once it is closed
    database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/conductor")
    try:
        for unit in (database.write, database.read):
            with pytest.raises(DatabaseUnreachable) as raised:
                async with unit():
                    pytest.fail("the unit must not start")
            assert raised.value.message == (
                "⛔ Conductor's database server cannot be reached. Nothing was changed: try "
                "again once it is back; Conductor goes on by itself then."
            )
        with pytest.raises(DatabaseUnreachable):
            await database.revision()
    finally:
        await database.dispose()
    said = [r.getMessage() for r in caplog.records if "cannot take writes" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("the database cannot take writes: unreachable")


async def test_a_server_that_never_answers_is_unreachable_within_the_connect_timeout() -> None:
    """A port that takes the connection and never answers (a server frozen, a host behind a
    dead route): the unit gives up after ``CONNECT_TIMEOUT_S``, not after asyncpg's own 60 s."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the kernel completes the handshake; nobody ever answers
        port = sock.getsockname()[1]
        database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/conductor")
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            with pytest.raises(DatabaseUnreachable):
                async with database.read():
                    pytest.fail("the unit must not start")
        finally:
            await database.dispose()
        waited = loop.time() - began
    assert waited < 60.0, waited  # asyncpg's default timeout, which it must not wait out


async def test_connections_the_server_dropped_are_replaced(db: Database, db_url: str) -> None:
    """Every connection of the pool killed by the server (as a restart does): the next unit
    of work gets a new one, nothing lost."""
    await put(db, 1)
    write_aside(
        db,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    await put(db, 2)
    assert await guilds(db) == [1, 2]


async def test_a_read_is_one_snapshot(db: Database) -> None:
    await put(db, 1)
    async with db.read() as session:
        before = list(await session.scalars(select(GuildConfig.guild_id)))
        await put(db, 2)  # committed meanwhile
        after = list(await session.scalars(select(GuildConfig.guild_id)))
    assert before == after == [1]
    assert await guilds(db) == [1, 2]


async def test_the_database_itself_refuses_a_second_active_release(db: Database) -> None:
    """The partial unique index holds on PostgreSQL as it does on SQLite (whatever reached
    the database first)."""
    insert = text(
        "INSERT INTO releases (guild_id, slug, name, state, opened_by, opened_at, row_version)"
        " VALUES (1, :slug, 'n', :state, 'o', now(), 1)"
    )
    async with db.write() as session:
        await session.execute(insert, {"slug": "a", "state": "assembling"})
    with pytest.raises(IntegrityError, match="uq_releases_one_active_per_guild"):
        async with db.write() as session:
            await session.execute(insert, {"slug": "b", "state": "assembled"})


def _error(sqlstate: str, message: str = "boom") -> DBAPIError:
    class Original(Exception):
        pass

    original = Original(message)
    original.sqlstate = sqlstate  # type: ignore[attr-defined]
    return DBAPIError("INSERT …", {}, original)


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [
        ("55P03", DatabaseBusy),  # lock_not_available (lock_timeout)
        ("40001", DatabaseBusy),  # serialization_failure
        ("40P01", DatabaseBusy),  # deadlock_detected
        ("53300", DatabaseBusy),  # too_many_connections
        ("53100", DatabaseFull),  # disk_full
        ("25006", DatabaseReadOnly),  # read_only_sql_transaction
        ("58030", DatabaseBroken),  # io_error
        ("XX001", DatabaseBroken),  # data_corrupted
        ("57P01", DatabaseUnreachable),  # admin_shutdown
        ("57P03", DatabaseUnreachable),  # cannot_connect_now
        ("08006", DatabaseUnreachable),  # connection_failure
        ("3D000", DatabaseUnreachable),  # the database does not exist
    ],
)
def test_postgresqls_errors_are_named(sqlstate: str, kind: type[DatabaseUnavailable]) -> None:
    found = unavailable(_error(sqlstate))
    assert type(found) is kind and found.detail == "boom"


@pytest.mark.parametrize("sqlstate", ["23505", "23514", "42P01", "22001"])
def test_postgresqls_other_errors_are_not_an_outage(sqlstate: str) -> None:
    """A unique or CHECK violation, a missing table, a value too long: bugs or races the
    domain answers, not the database away."""
    assert unavailable(_error(sqlstate)) is None


def test_the_cluster_is_this_runs_own(postgres: Cluster) -> None:
    assert postgres.root is not None and postgres.root.is_dir()
    assert postgres.url().startswith("postgresql+asyncpg://postgres@127.0.0.1:")
