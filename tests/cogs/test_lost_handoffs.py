"""Nothing lost, through the real bot in simcord: handoffs posted while the database cannot take
them (busy, full, read-only, its file deleted or replaced) get no ✅, the channel is told once
that the database is unavailable (pinging nobody), and once the database is back (the bot's
timer) or the bot starts again on it, the catch-up reads all of them back, page after page,
and answers each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.client import ConductorBot
from bot.sample import GUILD_ID
from cogs.handoffs._cog import BACK_NOTICE, WATCH_SECONDS
from conductor.states import HandoffOutcome, TaskState
from store.models import HandoffCursor, HandoffMessage
from tests.helpers import FAULTS, DatabaseFault, FakeRunner, Fault, World, make_bot

#: long enough to need a new page of the database (full: SQLite's pages are 4 KiB)
LONG = "\n\n" + "長い記録。" * 300


@pytest.fixture
async def simcord_bot(tmp_path: Path) -> AsyncIterator[ConductorBot]:
    """The conftest's bot, waiting 200 ms (not 10 s) for a lock another process holds."""
    async with make_bot(tmp_path, busy_timeout_ms=200) as bot:
        yield bot


def reactions(message: Any) -> dict[str, int]:
    return {str(r.emoji): r.count for r in message.reactions}


def by_id(channel: Any) -> dict[int, Any]:
    return {m.id: m for m in channel.history()}


async def rows(bot: ConductorBot) -> dict[int, HandoffMessage]:
    async with bot.database.read() as session:
        return {r.message_id: r for r in await session.scalars(select(HandoffMessage))}


async def cursor(bot: ConductorBot, channel_id: int) -> int | None:
    async with bot.database.read() as session:
        return await session.scalar(
            select(HandoffCursor.message_id).where(HandoffCursor.channel_id == channel_id)
        )


def notices(world: World) -> list[Any]:
    return [m for m in world.handoffs.history() if m.author.id == world.bot_id and not m.reference]


async def restart(world: World, mend: Callable[[], None] = lambda: None) -> ConductorBot:
    """Stop the bot, ``mend`` the database while it is away, and start a new bot on it (its
    catch-up runs on start)."""
    old = world.bot
    await world.env.shutdown()
    await old.close()
    mend()
    new = type(old)(old.settings, smoke_runner=FakeRunner())
    world.env.bot = world.bot = new
    await world.env.start()
    await world.env.settle()
    return new


async def post_during(world: World, fault: DatabaseFault, kind: Fault) -> list[Any]:
    """A handoff before the fault, then four during it: a move, a submit, a malformed one
    and chatter. Returns the four."""
    before = await world.bob.send(world.handoffs, "handoff core → designed\ntitle: Core")
    assert reactions(by_id(world.handoffs)[before.id]) == {"✅": 1}
    fault.start(kind)
    return [
        await world.bob.send(world.handoffs, "handoff core → building" + LONG),
        await world.bob.send(world.handoffs, "handoff core → submitted\nbranch: feat/core" + LONG),
        await world.bob.send(world.handoffs, "handoff api → submitted\ntitle: API\noops" + LONG),
        await world.bob.send(world.handoffs, "anyone seen the CI logs?" + LONG),
    ]


async def assert_all_answered(world: World, during: list[Any]) -> None:
    stored = await rows(world.bot)
    assert [stored[m.id].outcome for m in during] == [
        HandoffOutcome.APPLIED,
        HandoffOutcome.APPLIED,
        HandoffOutcome.REJECTED,
        HandoffOutcome.IGNORED,
    ]
    assert stored[during[0].id].text == during[0].content  # raw, long note and all
    seen = by_id(world.handoffs)
    assert [reactions(seen[m.id]) for m in during] == [{"✅": 1}, {"✅": 1}, {"⚠️": 1}, {}]
    [reply] = [m for m in seen.values() if m.reference is not None]
    assert reply.reference.message_id == during[2].id and "line 3" in reply.content
    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.task.state is TaskState.SUBMITTED and card.task.branch == "feat/core"
    assert len(world.reviews.history()) == 1
    assert await cursor(world.bot, world.handoffs.id) == during[-1].id


@pytest.mark.parametrize("kind", FAULTS)
async def test_handoffs_during_a_fault_are_answered_once_the_database_is_back(
    world: World, kind: Fault
) -> None:
    fault = DatabaseFault(world.bot.database)
    during = await post_during(world, fault, kind)
    seen = by_id(world.handoffs)
    assert [reactions(seen[m.id]) for m in during] == [{}, {}, {}, {}]  # no ✅, no ⚠️
    [notice] = notices(world)  # once, however many messages
    assert "Conductor can't store handoffs right now" in notice.content
    assert "Nothing posted here is lost" in notice.content
    assert not notice.mentions and not notice.role_mentions and not notice.mention_everyone
    # The bot's timer while the fault lasts: still nothing stored, nothing answered.
    await world.env.advance_time(WATCH_SECONDS)
    fault.stop()
    assert set(await rows(world.bot)).isdisjoint(m.id for m in during)
    await world.env.advance_time(WATCH_SECONDS)  # the next round finds it back
    await assert_all_answered(world, during)
    [notice] = notices(world)
    assert notice.content == BACK_NOTICE


@pytest.mark.parametrize("kind", FAULTS)
async def test_handoffs_during_a_fault_are_answered_when_the_bot_starts_again(
    world: World, kind: Fault
) -> None:
    fault = DatabaseFault(world.bot.database)
    during = await post_during(world, fault, kind)
    # The bot stops with the fault still on, and the database is mended while it is away.
    await restart(world, mend=fault.stop)
    await assert_all_answered(world, during)


@pytest.mark.simcord(settle_timeout=300)
@pytest.mark.parametrize(("back", "many"), [("timer", 2_560), ("restart", 1_200)])
async def test_thousands_of_handoffs_during_a_fault_are_all_read_back(
    world: World, back: str, many: int
) -> None:
    """More than 2,500 messages while the database is read-only: the catch-up pages through
    all of Discord's history since the cursor (26 pages of 100), not the first 1,000, reading
    each page once. On a restart, 1,200 (13 pages, past the old cap of 1,000), read back
    within the start."""
    fault = DatabaseFault(world.bot.database)
    first = await world.bob.send(world.handoffs, "handoff t0 → designed\ntitle: T0")
    fault.start("read-only")
    heard = await world.bob.send(world.handoffs, "handoff t0 → building")
    # The rest straight into Discord's state, as fast as agents can post (the bot hears
    # each one; its channel waits for the catch-up, so none is tried).
    backend = world.env.backend
    for i in range(many):
        backend.create_message(world.handoffs.id, world.bob.id, f"handoff t{i % 40 + 1} → designed")
    await world.env.settle()
    posted = [m.id for m in world.handoffs.history() if m.author.id == world.bob.id]
    assert len(posted) == many + 2 and posted[0] == first.id and posted[1] == heard.id
    assert set(await rows(world.bot)) == {first.id}
    requested = len(world.env.http_requests)
    if back == "timer":
        fault.stop()
        await world.env.advance_time(WATCH_SECONDS)
    else:
        await restart(world, mend=fault.stop)
    pages = [
        r
        for r in world.env.http_requests[requested:]
        if r.method == "GET" and r.path == f"/channels/{world.handoffs.id}/messages"
    ]
    stored = await rows(world.bot)
    assert sorted(stored) == posted
    assert await cursor(world.bot, world.handoffs.id) == posted[-1]
    answered = by_id(world.handoffs)
    assert all(reactions(answered[i]) == {"✅": 1} for i in posted)
    assert (await world.bot.tasks.card(GUILD_ID, "t0")).task.state is TaskState.BUILDING
    # each page of Discord's history read once (a count, not a time on a shared machine)
    assert len(pages) == -(-(many + 1) // 100), [r.params for r in pages]


async def test_the_same_history_read_twice_answers_nothing_twice(world: World) -> None:
    """A restart with nothing missed reads back from the cursor: no message answered again."""
    sent = await world.bob.send(world.handoffs, "handoff core → designed\ntitle: Core")
    await restart(world)
    assert reactions(by_id(world.handoffs)[sent.id]) == {"✅": 1}
    assert len(await rows(world.bot)) == 1
    assert [m.id for m in world.handoffs.history()] == [sent.id]


async def test_a_busy_database_holds_a_handoff_without_losing_it(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The outage is logged once for the database and once for the channel, however many
    messages meet it."""
    fault = DatabaseFault(world.bot.database)
    fault.start("busy")
    for i in range(5):
        await world.bob.send(world.handoffs, f"handoff t{i} → designed")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [
        "the database cannot take writes: busy (database is locked)"
    ]
    fault.stop()
    await world.env.advance_time(WATCH_SECONDS)
    assert len(await rows(world.bot)) == 5
