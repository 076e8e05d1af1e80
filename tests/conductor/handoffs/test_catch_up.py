"""Nothing lost when the database cannot take a handoff: the channel's cursor never passes a
message that was not stored, the channel falls behind (its live messages wait instead of
being tried again), and the catch-up, reading back in order, brings it in sync again. On a
real SQLite file with real faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from conductor.handoffs.apply import Handoffs
from conductor.states import TaskState
from conductor.tasks import Tasks
from conductor.views import IncomingMessage
from store.db import Database
from store.errors import DatabaseBusy, DatabaseReadOnly, DatabaseUnavailable
from store.models import HandoffCursor, HandoffMessage
from tests.helpers import GUILD, DatabaseFault, handoff

CHANNEL = 42  # where ``handoff()`` posts


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'conductor.db'}", busy_timeout_ms=200)
    await database.create_all()
    yield database
    await database.dispose()


@pytest.fixture
def handoffs(database: Database) -> Handoffs:
    return Handoffs(database, required_approvals=2)


async def cursor(database: Database) -> int | None:
    async with database.read() as session:
        return await session.scalar(
            select(HandoffCursor.message_id).where(
                HandoffCursor.guild_id == GUILD, HandoffCursor.channel_id == CHANNEL
            )
        )


async def stored(database: Database) -> list[int]:
    async with database.read() as session:
        return list(
            await session.scalars(
                select(HandoffMessage.message_id).order_by(HandoffMessage.message_id)
            )
        )


def replayed(message: IncomingMessage) -> IncomingMessage:
    return replace(message, replay=True)


async def in_sync(handoffs: Handoffs, newest: int = 0) -> None:
    """What the edge's catch-up does for a channel with nothing to read back."""
    start = await handoffs.catch_up_from(GUILD, CHANNEL, newest=newest)
    assert handoffs.caught_up(GUILD, CHANNEL, through=start)


async def test_a_new_channels_cursor_starts_at_its_newest_message(handoffs: Handoffs) -> None:
    assert await cursor(handoffs.db) is None
    assert await handoffs.catch_up_from(GUILD, CHANNEL, newest=500) == 500
    assert await cursor(handoffs.db) == 500
    # and only once: the cursor stays where it is
    assert await handoffs.catch_up_from(GUILD, CHANNEL, newest=900) == 500


async def test_live_messages_move_the_cursor_only_once_the_channel_is_in_sync(
    handoffs: Handoffs,
) -> None:
    early = handoff("hello", message_id=1_000)
    await handoffs.apply(early)  # heard before the catch-up: stored, the cursor stays
    assert await cursor(handoffs.db) is None and not handoffs.in_sync(GUILD, CHANNEL)
    await in_sync(handoffs, newest=1_000)
    await handoffs.apply(handoff("hi", message_id=1_001))
    assert await cursor(handoffs.db) == 1_001
    handoffs.resync()  # the gateway dropped: events may be lost until read back
    await handoffs.apply(handoff("after the drop", message_id=1_002))
    assert await cursor(handoffs.db) == 1_001
    assert await stored(handoffs.db) == [1_000, 1_001, 1_002]


async def test_a_message_the_database_cannot_take_is_read_back_in_order(
    handoffs: Handoffs,
) -> None:
    db = handoffs.db
    await in_sync(handoffs)
    first = handoff("handoff core → building\ntitle: Core", message_id=2_000)
    await handoffs.apply(first)
    fault = DatabaseFault(db)
    fault.start("read-only")
    lost = [handoff(f"note {i}", message_id=2_001 + i) for i in range(3)]
    results = await asyncio.gather(*(handoffs.submit(m) for m in lost), return_exceptions=True)
    assert all(isinstance(r, DatabaseReadOnly) for r in results), results
    assert isinstance(handoffs.waiting(GUILD, CHANNEL), DatabaseReadOnly)
    assert not handoffs.in_sync(GUILD, CHANNEL)
    fault.stop()
    # Back, but the channel is behind: a live message waits for the catch-up instead of
    # jumping the queue (and the cursor) ahead of the three.
    later = handoff("handoff core → submitted", message_id=2_010)
    with pytest.raises(DatabaseReadOnly):
        await handoffs.submit(later)
    assert await stored(db) == [2_000] and await cursor(db) == 2_000
    # The catch-up: from the cursor, everything after it, oldest first.
    assert await handoffs.catch_up_from(GUILD, CHANNEL, newest=0) == 2_000
    for message in [*lost, later]:
        await handoffs.submit(replayed(message))
    assert await cursor(db) == 2_010
    assert handoffs.caught_up(GUILD, CHANNEL, through=2_010)
    assert handoffs.in_sync(GUILD, CHANNEL) and handoffs.waiting(GUILD, CHANNEL) is None
    assert await stored(db) == [2_000, 2_001, 2_002, 2_003, 2_010]
    assert (await Tasks(db).card(GUILD, "core")).task.state is TaskState.SUBMITTED


async def test_the_catch_up_reads_on_while_newer_messages_failed(handoffs: Handoffs) -> None:
    await in_sync(handoffs)
    fault = DatabaseFault(handoffs.db)
    fault.start("read-only")
    for message_id in (3_000, 3_001):
        with pytest.raises(DatabaseUnavailable):
            await handoffs.apply(handoff("x", message_id=message_id))
    fault.stop()
    await handoffs.apply(replayed(handoff("x", message_id=3_000)))
    # Read through 3,000 only (3,001 came after the history was read): not yet in sync.
    assert not handoffs.caught_up(GUILD, CHANNEL, through=3_000)
    assert await handoffs.catch_up_from(GUILD, CHANNEL, newest=0) == 3_000
    await handoffs.apply(replayed(handoff("x", message_id=3_001)))
    assert handoffs.caught_up(GUILD, CHANNEL, through=3_001)


async def test_a_failed_message_deleted_before_the_catch_up_does_not_hold_it_forever(
    handoffs: Handoffs,
) -> None:
    await in_sync(handoffs)
    fault = DatabaseFault(handoffs.db)
    fault.start("read-only")
    with pytest.raises(DatabaseUnavailable):
        await handoffs.apply(handoff("soon deleted", message_id=4_000))
    fault.stop()
    # The history no longer has 4,000: a first round ends short of it, a second round that
    # saw no new failure knows it is gone.
    assert not handoffs.caught_up(GUILD, CHANNEL, through=3_999)
    assert handoffs.caught_up(GUILD, CHANNEL, through=3_999)


async def test_a_channel_whose_first_message_failed_is_read_back_from_it(
    handoffs: Handoffs,
) -> None:
    fault = DatabaseFault(handoffs.db)
    fault.start("read-only")
    with pytest.raises(DatabaseUnavailable):
        await handoffs.apply(handoff("first ever", message_id=5_000))
    fault.stop()
    assert await cursor(handoffs.db) is None
    assert await handoffs.catch_up_from(GUILD, CHANNEL, newest=5_000) == 4_999


async def test_a_busy_database_fails_a_batch_once_not_once_per_message(
    handoffs: Handoffs,
) -> None:
    """One bad message is looked for one at a time; a busy database is nobody's message:
    the whole batch fails after one wait for the lock (200 ms here), not fifty. The waits are
    counted: each is a ``BEGIN IMMEDIATE`` that meets the lock."""
    await in_sync(handoffs)
    waits: list[str] = []

    def begun(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            waits.append(statement)

    fault = DatabaseFault(handoffs.db)
    fault.start("busy")
    event.listen(handoffs.db.engine.sync_engine, "before_cursor_execute", begun)
    try:
        results = await asyncio.gather(
            *(handoffs.submit(handoff(f"n{i}", message_id=6_000 + i)) for i in range(50)),
            return_exceptions=True,
        )
    finally:
        event.remove(handoffs.db.engine.sync_engine, "before_cursor_execute", begun)
    fault.stop()
    assert all(isinstance(r, DatabaseBusy) for r in results)
    assert len(waits) == 1, waits
    assert await stored(handoffs.db) == []
