"""Reminders through the real bot in simcord, its timer moved by simcord's virtual time: one
reminder per interval in the release's thread, pinging nobody; none once the condition clears
(the release ships, the red seal is sealed green, the lock goes); none repeated across a
restart, and one (not ten) after the bot was away for ten intervals; the lock's in the notes
channel while no release is open; a database fault or a broken guild logged once, the rest
going on.

The bot's clock is the wall clock when the test began, moved on by simcord's virtual time
(and by ``away``, time that passes while no bot runs). The database stamps what happens with
the wall clock, so each test sets up its condition before it moves time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import simcord

from bot.client import ConductorBot, create_bot
from bot.sample import GUILD_ID
from conductor.reminders import HeldLock
from store.types import utcnow
from tests.helpers import DatabaseFault, FakeRunner, World, make_bot, release_by_commands

#: an advance of hours is hundreds of rounds of the bot's timers (about 3.5 s of real time
#: per virtual hour here), more than simcord's default 5 s to settle one advance
pytestmark = pytest.mark.simcord(settle_timeout=120)

MINUTE, HOUR = 60, 3600
#: a release untouched for an hour, a red seal for half an hour, a lock for two hours
REMINDERS = {
    "idle_release_after": "1h",
    "red_seal_after": "30m",
    "lock_after": "2h",
    "check_every": "1m",
}
OPERATORS = "anyone with the `Operators` role"


class VirtualClock:
    def __init__(self) -> None:
        self.wall = utcnow()
        self.env: simcord.Env | None = None
        self.origin: datetime | None = None
        #: time that passed while no bot ran
        self.away = timedelta()

    def attach(self, env: simcord.Env) -> None:
        self.env, self.origin = env, env.now()

    def __call__(self) -> datetime:
        moved = self.env.now() - self.origin if self.env and self.origin else timedelta()
        return self.wall + moved + self.away


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def simcord_bot(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[ConductorBot]:
    """The conftest's bot with short intervals, on the virtual clock, giving up on a busy
    database after 200 ms."""
    async with make_bot(tmp_path, busy_timeout_ms=200, clock=clock, reminders=REMINDERS) as bot:
        yield bot


@pytest.fixture
def train(world: World, clock: VirtualClock) -> World:
    """The world, its time the bot's clock."""
    clock.attach(world.env)
    return world


@dataclass
class FakeLocks:
    """The lock as the lock's service would give it (another part builds that service); a
    guild in ``broken`` fails to read."""

    lock: HeldLock | None = None
    broken: int | None = None

    async def current(self, guild_id: int) -> HeldLock | None:
        if guild_id == self.broken:
            raise RuntimeError("the lock could not be read")
        return self.lock


def reminders_in(channel: Any) -> list[Any]:
    return [m for m in channel.history() if m.content.startswith("⏰")]


def numbers(channel: Any) -> list[int]:
    """The reminders' numbers, oldest first."""
    return [
        int(m.content.split("**Reminder ", 1)[1].split("**", 1)[0]) for m in reminders_in(channel)
    ]


def thread_of(world: World, slug: str) -> Any:
    [thread] = [t for t in world.notes.threads if t.name == slug]
    return thread


def pinged_nobody(world: World, message: Any) -> bool:
    """Whether ``message`` notified no one (simcord computes whom each message would)."""
    stored = world.env.backend.messages[message.channel.id][message.id]
    return not (stored.ping_user_ids or stored.ping_role_ids or stored.mention_everyone)


async def restart(world: World, clock: VirtualClock, *, away: timedelta = timedelta()) -> None:
    """Stop the bot; ``away`` passes; a new bot starts on the same database and clock."""
    old = world.bot
    await world.env.shutdown()
    await old.close()
    clock.away += away
    new = create_bot(old.settings, smoke_runner=FakeRunner(), clock=clock)
    world.env.bot = world.bot = new
    await world.env.start()
    await world.env.settle()


async def test_one_reminder_per_interval_and_none_once_the_release_ships(train: World) -> None:
    world = train
    slug = await release_by_commands(world, until="assembling")
    thread = thread_of(world, slug)
    await world.env.advance_time(59 * MINUTE)
    assert reminders_in(thread) == []
    await world.env.advance_time(31 * MINUTE)  # 1 h 30
    [first] = reminders_in(thread)
    assert first.content.startswith(f"⏰ **Reminder 1**: `{slug}` has been assembling for 1 h ")
    assert first.content.splitlines()[1] == (
        f"Who can act: {OPERATORS}, with `/release add` (more tasks), `/release assemble` "
        "(complete it) or `/release abandon` (drop it)."
    )
    assert pinged_nobody(world, first)
    await world.env.advance_time(2 * HOUR)  # 3 h 30
    assert numbers(thread) == [1, 2, 3]
    await world.olga.slash(world.general, "release assemble")
    await world.olga.slash(world.general, "release ship")  # green: nothing holds the train
    await world.env.advance_time(5 * HOUR)
    assert numbers(thread) == [1, 2, 3]
    assert reminders_in(world.notes) == reminders_in(world.general) == []
    assert await train.bot.reminders.said(GUILD_ID) == {}


async def test_a_red_seal_is_reminded_until_it_is_sealed_green(train: World) -> None:
    world = train
    slug = await release_by_commands(world, until="assembling")
    await world.olga.slash(world.general, "release assemble")
    world.runner.then({"/signin": "selector form input[type=password] not found"})
    await world.olga.slash(world.general, "release ship")
    thread = thread_of(world, slug)
    alerts = len(thread.history())  # the notes and the red alert
    await world.env.advance_time(29 * MINUTE)
    assert reminders_in(thread) == []
    await world.env.advance_time(2 * MINUTE + 30 * MINUTE)  # 1 h 1
    first, second = reminders_in(thread)
    assert first.content.startswith(
        f"⏰ **Reminder 1**: production runs `{slug}` v1, and its smoke seal has been 🔴 red "
        "for 30 min (since <t:"
    )
    assert f"Who can act: {OPERATORS}, with `/release rollback`" in first.content
    assert pinged_nobody(world, first) and pinged_nobody(world, second)
    await world.olga.slash(world.general, "seal")  # green this time
    await world.env.advance_time(3 * HOUR)
    assert numbers(thread) == [1, 2]
    assert len(thread.history()) == alerts + 2 + 1  # the two reminders and the green re-seal


async def test_a_restart_repeats_nothing_and_an_absence_gives_one(
    train: World, clock: VirtualClock
) -> None:
    world = train
    slug = await release_by_commands(world, tasks=(), until="assembling")
    await world.env.advance_time(90 * MINUTE)
    assert numbers(thread_of(world, slug)) == [1]  # at 1 h 1
    await restart(world, clock)  # its timer runs at once
    thread = thread_of(world, slug)
    await world.env.advance_time(29 * MINUTE)  # 1 h 59
    assert numbers(thread) == [1]
    await world.env.advance_time(3 * MINUTE)  # 2 h 2
    assert numbers(thread) == [1, 2]
    # The bot is away for ten intervals: one reminder when it is back, not ten.
    await restart(world, clock, away=timedelta(hours=10))
    assert numbers(thread) == [1, 2, 3]
    assert "has been assembling for 12 h" in reminders_in(thread)[-1].content
    await world.env.advance_time(59 * MINUTE)
    assert numbers(thread) == [1, 2, 3]
    await world.env.advance_time(2 * MINUTE)
    assert numbers(thread) == [1, 2, 3, 4]


async def test_a_lock_held_too_long_pings_nobody_and_stops_when_unlocked(train: World) -> None:
    """In the notes channel while no release is open, in the open release's thread when one
    is. The holder's name comes from a member: it pings nobody."""
    world = train
    hostile = f"@everyone <@&{world.operators.id}> <@{world.bob.id}>"
    locks = FakeLocks(HeldLock(hostile, world.olga.id, utcnow(), "freeze for the audit"))
    world.bot.reminders.locks = locks
    await world.env.advance_time(2 * HOUR + MINUTE)
    [first] = reminders_in(world.notes)
    assert first.content.startswith(
        f"⏰ **Reminder 1**: the train has been locked by **{hostile}**"
    )
    assert "“freeze for the audit”" in first.content
    assert "can take the lock over with `/release lock`" in first.content
    assert pinged_nobody(world, first)
    slug = await release_by_commands(world, tasks=(), until="assembling")
    await world.env.advance_time(2 * HOUR)
    [second] = [m for m in reminders_in(thread_of(world, slug)) if "locked by" in m.content]
    assert second.content.startswith("⏰ **Reminder 2**: the train has been locked")
    assert pinged_nobody(world, second)
    locks.lock = None
    await world.env.advance_time(4 * HOUR)
    everywhere = reminders_in(world.notes) + reminders_in(thread_of(world, slug))
    assert sum("locked by" in m.content for m in everywhere) == 2


async def test_a_database_fault_is_logged_once_and_reminders_go_on_after_it(
    train: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The database turns read-only just before the first reminder is due: two hours of
    rounds that cannot record one send nothing and log one line (the database's); once it is
    writable again, one reminder, not one per interval missed."""
    world = train
    slug = await release_by_commands(world, tasks=(), until="assembling")
    fault = DatabaseFault(world.bot.database)
    await world.env.advance_time(59 * MINUTE)
    fault.start("read-only")
    caplog.clear()
    await world.env.advance_time(2 * HOUR)
    assert reminders_in(thread_of(world, slug)) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        "the database cannot take writes: read-only (attempt to write a readonly database)"
    ]
    fault.stop()
    await world.env.advance_time(MINUTE)
    [reminder] = reminders_in(thread_of(world, slug))
    assert reminder.content.startswith(
        f"⏰ **Reminder 1**: `{slug}` has been assembling for 2 h 59 min"
    )
    await world.env.advance_time(59 * MINUTE)
    assert numbers(thread_of(world, slug)) == [1]


async def test_a_guild_that_fails_is_logged_once_and_the_others_are_reminded(
    train: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = train
    other = world.env.create_guild("Other")
    other_notes = other.create_text_channel("release-notes")
    await world.env.settle()
    world.bot.reminders.locks = FakeLocks(HeldLock("olga", world.olga.id, utcnow()), other.id)
    caplog.clear()
    await world.env.advance_time(4 * HOUR + MINUTE)
    assert numbers(world.notes) == [1, 2]
    assert reminders_in(other_notes) == []
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in failed] == [f"the reminders of guild {other.id} failed"]
    assert failed[0].exc_info is not None
