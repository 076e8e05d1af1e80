"""Reminders in the domain, on a real SQLite file with a clock the test moves: the
``[reminders]`` table, what is due (one per interval, never a flood, a new episode afresh), the
three conditions (a release left open, a red seal nobody acted on, a lock held too long) and
their clearing, and exactly once across a crash on either side of Discord taking the
reminder, a refusal, and two processes on one database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from conductor.bootstrap import Conductor, bootstrap
from conductor.queries import held_by
from conductor.reminders import (
    IN_FLIGHT,
    RETRY_AFTER,
    Condition,
    HeldLock,
    ReminderConfig,
    ReminderConfigError,
    Reminders,
    Said,
    due,
    parse_reminders_config,
    span,
)
from conductor.states import ReleaseState, ReminderKind, SealStatus
from conductor.views import ReleaseView
from store.db import Database
from store.models import Release, Reminder, StageEvent, Task
from store.types import utcnow
from tests.helpers import (
    GUILD,
    OPERATOR,
    RACE_BUSY_TIMEOUT_MS,
    TEST_APP,
    FakeRunner,
    MakeReviewed,
    assembled,
    ship,
)

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
CONFIG = ReminderConfig(idle_release_after=24 * HOUR, red_seal_after=2 * HOUR, lock_after=8 * HOUR)
WHO = "anyone with the `Operators` role"


class Clock:
    """The reminders' clock, moved by the test (and set to the wall clock's now)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def reset(self) -> None:
        """Now, by the wall clock: after the conditions were set up."""
        self.now = utcnow()

    def at(self, delta: timedelta) -> None:
        self.now += delta


class Crash(Exception):
    """The process dies here."""


@dataclass
class FakeSink:
    """Keeps what it posts, as Discord would; ``down`` refuses posts; ``crash`` dies before
    or after Discord took the post."""

    posts: list[tuple[str | None, str]] = field(default_factory=list)
    looked: list[str] = field(default_factory=list)
    down: bool = False
    crash: str | None = None

    async def operators(self, guild_id: int) -> str:
        return WHO

    async def remind(self, guild_id: int, release: ReleaseView | None, text: str) -> bool:
        if self.crash == "before":
            raise Crash
        if self.down:
            return False
        self.posts.append((release.slug if release is not None else None, text))
        if self.crash == "after":
            raise Crash
        return True

    async def reminded(self, guild_id: int, release: ReleaseView | None, marker: str) -> bool:
        self.looked.append(marker)
        return any(marker in text for _, text in self.posts)

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.posts]


@dataclass
class FakeLocks:
    lock: HeldLock | None = None

    async def current(self, guild_id: int) -> HeldLock | None:
        return self.lock


@pytest.fixture
def domain(db: Database, runner: FakeRunner) -> Conductor:
    """The domain sealing against the tests' ``[app]`` with the fake runner."""
    return bootstrap(database=db, app=TEST_APP, runner=runner)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def reminders(db: Database, sink: FakeSink, clock: Clock) -> Reminders:
    return Reminders(db, CONFIG, sink, clock=clock)


async def assembling(domain: Conductor, make_reviewed: MakeReviewed, name: str = "t") -> str:
    await make_reviewed(f"{name}-core")
    view = await domain.releases.open(GUILD, name, OPERATOR)
    await domain.releases.add_task(GUILD, f"{name}-core", OPERATOR)
    return view.slug


async def age(db: Database, slug: str, by: timedelta) -> None:
    """Everything that happened to release ``slug`` (and its members) happened ``by`` earlier."""
    async with db.write() as session:
        release = await session.scalar(select(Release).where(Release.slug == slug))
        assert release is not None
        for column in ("opened_at", "assembled_at", "rc_tests_at", "shipped_at", "seal_checked_at"):
            value = getattr(release, column)
            if value is not None:
                setattr(release, column, value - by)
        for task in await session.scalars(select(Task).where(Task.release_id == release.id)):
            task.state_since -= by
        for event in await session.scalars(
            select(StageEvent).where(StageEvent.release_id == release.id)
        ):
            event.at -= by


async def rows(db: Database) -> list[Reminder]:
    async with db.read() as session:
        return list(await session.scalars(select(Reminder)))


# -- the [reminders] table ----------------------------------------------------------------


def test_the_defaults_and_what_a_duration_may_be() -> None:
    assert parse_reminders_config(None) == ReminderConfig(
        idle_release_after=24 * HOUR,
        red_seal_after=2 * HOUR,
        lock_after=8 * HOUR,
        check_every=MINUTE,
    )
    parsed = parse_reminders_config(
        {
            "idle_release_after": "1d12h",
            "red_seal_after": " 90M ",
            "lock_after": "off",
            "check_every": "30s",
        }
    )
    assert parsed == ReminderConfig(36 * HOUR, 90 * MINUTE, None, timedelta(seconds=30))
    assert parse_reminders_config({"red_seal_after": 0}).red_seal_after is None
    assert parse_reminders_config({"lock_after": "0"}).lock_after is None
    assert parse_reminders_config({"lock_after": "2h30m"}).lock_after == 150 * MINUTE


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"lock_after": 90}, "reminders.lock_after: a number needs a unit; expected"),
        ({"lock_after": 1.5}, "reminders.lock_after: a number needs a unit"),
        ({"red_seal_after": "2 hours"}, "reminders.red_seal_after: not a duration"),
        ({"red_seal_after": "h"}, "reminders.red_seal_after: not a duration"),
        ({"idle_release_after": "30s"}, "reminders.idle_release_after: at least 1m"),
        ({"idle_release_after": True}, "reminders.idle_release_after: expected a duration"),
        ({"idle_release_after": ["2h"]}, "reminders.idle_release_after: expected a duration"),
        ({"lock_after": "999999999d"}, "reminders.lock_after: at most 366d"),
        ({"check_every": "off"}, "reminders.check_every: cannot be off"),
        ({"check_every": "2h"}, "reminders.check_every: between 1s and 1h"),
        ({"assembling_after": "2h"}, "reminders.assembling_after: not a setting"),
    ],
)
def test_a_malformed_table_is_refused_naming_the_setting(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ReminderConfigError) as refused:
        parse_reminders_config(table)
    assert str(refused.value).startswith(message), refused.value


async def test_bootstrap_builds_the_reminders_from_the_table(db: Database) -> None:
    built = bootstrap(database=db, runner=FakeRunner(), reminders={"lock_after": "4h"})
    assert built.reminders.config.lock_after == 4 * HOUR
    assert built.reminders.config.red_seal_after == 2 * HOUR
    with pytest.raises(ReminderConfigError, match=r"reminders\.lock_after"):
        bootstrap(database=db, runner=FakeRunner(), reminders={"lock_after": "soon"})


# -- what is due ----------------------------------------------------------------------------


def test_span() -> None:
    assert [span(d) for d in (45 * MINUTE, 26 * HOUR, 90 * MINUTE, 74 * HOUR, 48 * HOUR)] == [
        "45 min",
        "26 h",
        "1 h 30 min",
        "3 days 2 h",
        "2 days",
    ]


def test_due_once_per_interval_however_long_the_bot_was_away() -> None:
    """Minute by minute over ten hours, then a gap of ten intervals: one reminder per
    interval, and one (not ten) after the gap."""
    start = utcnow()
    condition = Condition(ReminderKind.LOCK, "lock", start, 2 * HOUR, None)
    said: Said | None = None
    sent: list[timedelta] = []

    def tick(at: timedelta) -> None:
        nonlocal said
        if due(condition, said, start + at) == "send":
            said = Said(ReminderKind.LOCK, "lock", start, len(sent) + 1, start + at)
            sent.append(at)

    for minute in range(10 * 60):
        tick(minute * MINUTE)
    assert sent == [2 * HOUR, 4 * HOUR, 6 * HOUR, 8 * HOUR]
    for minute in range(30 * 60, 33 * 60):  # back after twenty hours
        tick(minute * MINUTE)
    assert sent[4:] == [30 * HOUR, 32 * HOUR]


def test_due_leaves_a_reminder_in_flight_alone_then_looks_for_it() -> None:
    start = utcnow()
    condition = Condition(ReminderKind.LOCK, "lock", start, HOUR, None)
    sending = Said(ReminderKind.LOCK, "lock", start, 0, None, start + HOUR, "⏰ text")
    assert due(condition, sending, start + HOUR + IN_FLIGHT - MINUTE) is None
    assert due(condition, sending, start + HOUR + IN_FLIGHT) == "look"
    # what was said about an earlier episode does not count
    earlier = Said(ReminderKind.LOCK, "lock", start - HOUR, 3, start + HOUR)
    assert due(condition, earlier, start + HOUR) == "send"
    refused = Said(ReminderKind.LOCK, "lock", start, 0, None, failed_at=start + HOUR)
    assert due(condition, refused, start + HOUR + RETRY_AFTER - MINUTE) is None
    assert due(condition, refused, start + HOUR + RETRY_AFTER) == "send"


# -- a release left open -----------------------------------------------------------------


async def test_one_reminder_per_interval_and_one_after_a_long_absence(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    reminders: Reminders,
    sink: FakeSink,
    clock: Clock,
) -> None:
    slug = await assembling(domain, make_reviewed)
    clock.reset()
    sent = []
    for at in (MINUTE, 23 * HOUR + 58 * MINUTE, MINUTE, MINUTE, 12 * HOUR, 11 * HOUR + 58 * MINUTE):
        clock.at(at)  # 1 min, 23 h 59 min, 24 h, 24 h 1 min, 36 h 1 min, 47 h 59 min
        sent.append(await reminders.tick(GUILD))
    assert sent == [0, 0, 1, 0, 0, 0]  # the first at 24 h, nothing until 48 h
    clock.at(MINUTE)
    assert await reminders.tick(GUILD) == 1  # 48 h
    clock.at(10 * 24 * HOUR)  # the bot was away ten intervals: one, not ten
    assert [await reminders.tick(GUILD) for _ in range(3)] == [1, 0, 0]  # and only once
    assert [where for where, _ in sink.posts] == [slug] * 3
    first, second, third = sink.texts
    assert first.startswith(f"⏰ **Reminder 1**: `{slug}` has been assembling for 24 h ")
    assert second.startswith(f"⏰ **Reminder 2**: `{slug}` has been assembling for 2 days ")
    assert third.startswith(f"⏰ **Reminder 3**: `{slug}` has been assembling for 12 days ")
    opened = (await domain.releases.get(GUILD, slug)).members[0].state_since
    assert opened is not None
    assert first.splitlines() == [
        f"⏰ **Reminder 1**: `{slug}` has been assembling for 24 h (untouched since "
        f"<t:{int(opened.timestamp())}:f>, 1 member).",
        f"Who can act: {WHO}, with `/release add` (more tasks), `/release assemble` "
        "(complete it) or `/release abandon` (drop it).",
    ]
    [row] = await rows(domain.db)
    assert (row.kind, row.subject, row.count) == (ReminderKind.RELEASE, slug, 3)
    assert row.intent_text is None and row.last_sent_at == clock.now


async def test_an_assembled_release_is_told_to_ship(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    reminders: Reminders,
    sink: FakeSink,
    clock: Clock,
) -> None:
    slug = await assembled(domain, make_reviewed)
    clock.reset()
    clock.at(24 * HOUR)
    assert await reminders.tick(GUILD) == 1
    [text] = sink.texts
    assert text.startswith(f"⏰ **Reminder 1**: `{slug}` has been assembled for 24 h and has not")
    assert (
        text.splitlines()[1] == f"Who can act: {WHO}, with `/release ship` or `/release abandon`."
    )


async def test_a_release_touched_waits_a_whole_interval_again(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    reminders: Reminders,
    sink: FakeSink,
    clock: Clock,
    db: Database,
) -> None:
    """Untouched for 30 hours, it was reminded; then a member joins (now): the next reminder
    comes 24 hours after that, counted afresh. A member leaving is a touch too."""
    slug = await assembling(domain, make_reviewed)
    await make_reviewed("t-more")
    await age(db, slug, 30 * HOUR)
    clock.reset()
    assert await reminders.tick(GUILD) == 1
    await domain.releases.add_task(GUILD, "t-more", OPERATOR)
    clock.reset()
    clock.at(23 * HOUR + 59 * MINUTE)
    assert await reminders.tick(GUILD) == 0
    clock.at(MINUTE)
    assert await reminders.tick(GUILD) == 1
    assert sink.texts[1].startswith(f"⏰ **Reminder 1**: `{slug}` has been assembling for 24 h")
    assert "2 members" in sink.texts[1]
    await age(db, slug, 30 * HOUR)
    await domain.releases.remove_task(GUILD, "t-more", OPERATOR)  # recorded on the release
    clock.reset()
    clock.at(23 * HOUR)
    assert await reminders.tick(GUILD) == 0


@pytest.mark.parametrize("end", ["ship", "abandon"])
async def test_none_once_the_release_ships_or_is_abandoned(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    reminders: Reminders,
    sink: FakeSink,
    clock: Clock,
    end: str,
) -> None:
    await assembled(domain, make_reviewed)
    clock.reset()
    clock.at(24 * HOUR)
    assert await reminders.tick(GUILD) == 1
    assert len(await rows(domain.db)) == 1
    if end == "ship":
        await ship(domain)  # green: nothing holds the train
    else:
        await domain.releases.abandon(GUILD, "done with it", OPERATOR)
    for _ in range(3):
        clock.at(24 * HOUR)
        assert await reminders.tick(GUILD) == 0
    assert await rows(domain.db) == []  # the record went with the condition
    assert len(sink.posts) == 1


# -- a red seal nobody acted on -----------------------------------------------------------


async def shipped_red(domain: Conductor, make_reviewed: MakeReviewed, runner: FakeRunner) -> str:
    slug = await assembled(domain, make_reviewed)
    runner.then({"/signin": "selector form input[type=password] not found"})
    await ship(domain)
    return slug


async def test_a_red_seal_is_reminded_until_it_is_sealed_green(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    runner: FakeRunner,
    reminders: Reminders,
    sink: FakeSink,
    clock: Clock,
) -> None:
    slug = await shipped_red(domain, make_reviewed, runner)
    clock.reset()
    clock.at(2 * HOUR - MINUTE)
    assert await reminders.tick(GUILD) == 0
    clock.at(MINUTE)
    assert await reminders.tick(GUILD) == 1
    clock.at(2 * HOUR)
    assert await reminders.tick(GUILD) == 1
    assert [where for where, _ in sink.posts] == [slug, slug]
    lines = sink.texts[0].splitlines()
    assert lines[0].startswith(
        f"⏰ **Reminder 1**: production runs `{slug}` v1, and its smoke seal has been 🔴 red "
        "for 2 h (since <t:"
    )
    assert lines[0].endswith(
        "with nobody acting on it: 1 of 6 failed: /signin (selector form "
        "input[type=password] not found). Until then the train is held: `/release open` asks "
        "for a confirmation."
    )
    assert lines[1] == (
        f"Who can act: {WHO}, with `/release rollback` (production goes back to the release "
        "before it) or, once production is fixed, `/seal` (sealed green again)."
    )
    shipped = await domain.releases.get(GUILD, slug)
    await domain.publisher.reseal(GUILD, shipped, OPERATOR)  # green
    clock.at(4 * HOUR)
    assert await reminders.tick(GUILD) == 0
    assert await rows(domain.db) == []


async def test_a_rollback_clears_the_red_seal(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    runner: FakeRunner,
    reminders: Reminders,
    sink: FakeSink,
    clock: Clock,
    db: Database,
) -> None:
    slug = await shipped_red(domain, make_reviewed, runner)
    clock.reset()
    clock.at(2 * HOUR)
    assert await reminders.tick(GUILD) == 1
    await roll_back(db, slug)
    clock.at(2 * HOUR)
    assert await reminders.tick(GUILD) == 0
    assert await rows(db) == []


async def roll_back(db: Database, slug: str) -> None:
    """What the rollback leaves (the rollback itself is another part's): the release rolled
    back."""
    async with db.write() as session:
        release = await session.scalar(select(Release).where(Release.slug == slug))
        assert release is not None
        release.state = ReleaseState.ROLLED_BACK
        release.rolled_back_at = utcnow()
        release.rolled_back_by = OPERATOR.name


async def holding(db: Database) -> str | None:
    async with db.read() as session:
        held = await held_by(session, GUILD)
    return held.slug if held is not None else None


async def test_the_held_train(
    domain: Conductor, make_reviewed: MakeReviewed, runner: FakeRunner, db: Database
) -> None:
    """Held while the last shipped release is red or error; not after a green re-seal, and
    not after its rollback unless the release production runs again is red too."""
    assert await holding(db) is None  # nothing shipped
    green = await assembled(domain, make_reviewed, "a")
    await ship(domain)
    assert await holding(db) is None
    red = await shipped_red(domain, make_reviewed, runner)
    assert await holding(db) == red
    await roll_back(db, red)
    assert await holding(db) is None  # production is `green` again
    runner.then(RuntimeError("no browser"))
    errored = await domain.releases.get(GUILD, green)
    await domain.publisher.reseal(GUILD, errored, OPERATOR)
    assert (await domain.releases.get(GUILD, green)).seal_status is SealStatus.ERROR
    assert await holding(db) == green
    await domain.publisher.reseal(GUILD, errored, OPERATOR)  # green again
    assert await holding(db) is None


# -- a lock held too long ------------------------------------------------------------------


async def test_a_lock_held_too_long(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    db: Database,
    sink: FakeSink,
    clock: Clock,
) -> None:
    """Reminded in the notes channel while no release is open, in the open release's thread
    when one is; nothing once unlocked; locked again, counted afresh."""
    locks = FakeLocks(HeldLock("olga", OPERATOR.id, utcnow(), "prod\nfreeze"))
    reminders = Reminders(db, CONFIG, sink, locks=locks, clock=clock)
    clock.reset()
    clock.at(8 * HOUR)
    assert await reminders.tick(GUILD) == 1
    slug = await assembling(domain, make_reviewed)
    clock.at(8 * HOUR)
    assert await reminders.tick(GUILD) == 1
    assert [where for where, _ in sink.posts] == [None, slug]
    first = sink.texts[0].splitlines()
    assert first[0].startswith(
        "⏰ **Reminder 1**: the train has been locked by **olga** for 8 h (since <t:"
    )
    assert first[0].endswith("): “prod freeze”. Nothing opens or ships while it is locked.")
    assert first[1] == (
        f"Who can act: **olga** with `/release unlock`; {WHO} can take the lock over with "
        "`/release lock`."
    )
    assert sink.texts[1].startswith(
        "⏰ **Reminder 2**: the train has been locked by **olga** for 16 h"
    )
    assert [r.kind for r in await rows(db)] == [ReminderKind.LOCK]
    locks.lock = None
    clock.at(7 * HOUR)  # 23 h: the release's own reminder is not due yet
    assert await reminders.tick(GUILD) == 0
    assert await rows(db) == []
    locks.lock = HeldLock("avi", 7, clock.now, "")
    clock.at(8 * HOUR)
    assert await reminders.tick(GUILD) == 2  # the release's (opened just after 0 h), the lock's
    assert sink.texts[-2].startswith(f"⏰ **Reminder 1**: `{slug}` has been assembling for 30 h")
    assert sink.texts[-1].startswith("⏰ **Reminder 1**: the train has been locked by **avi**")
    assert len(sink.posts) == 4


async def test_the_lock_reminder_reads_the_real_lock_service(
    domain: Conductor, db: Database, sink: FakeSink, clock: Clock
) -> None:
    """The bootstrap wires the domain's own ``Locks`` into the reminders: a lock taken with the
    lock service nags once its interval passed, and stops when its holder unlocks."""
    await domain.locks.lock(GUILD, "prod freeze", OPERATOR)
    reminders = Reminders(db, CONFIG, sink, locks=domain.locks, clock=clock)
    clock.reset()
    clock.at(8 * HOUR)
    assert await reminders.tick(GUILD) == 1
    assert "the train has been locked by" in sink.texts[0]
    assert "“prod freeze”" in sink.texts[0]
    await domain.locks.unlock(GUILD, OPERATOR)
    clock.at(8 * HOUR)
    assert await reminders.tick(GUILD) == 0
    assert await rows(db) == []
    # and the bootstrap's own reminders read that same service
    assert domain.reminders.locks is domain.locks


async def test_a_reminder_turned_off_sends_nothing_and_forgets(
    domain: Conductor, make_reviewed: MakeReviewed, db: Database, sink: FakeSink, clock: Clock
) -> None:
    await assembling(domain, make_reviewed)
    clock.reset()
    clock.at(24 * HOUR)
    assert await Reminders(db, CONFIG, sink, clock=clock).tick(GUILD) == 1
    off = ReminderConfig(idle_release_after=None)
    clock.at(48 * HOUR)
    assert await Reminders(db, off, sink, clock=clock).tick(GUILD) == 0
    assert await rows(db) == []


# -- exactly once ---------------------------------------------------------------------------


async def test_a_reminder_discord_took_just_before_a_crash_is_not_sent_again(
    domain: Conductor, make_reviewed: MakeReviewed, db: Database, sink: FakeSink, clock: Clock
) -> None:
    await assembling(domain, make_reviewed)
    clock.reset()
    clock.at(24 * HOUR)
    sink.crash = "after"  # Discord has it; the process dies before recording it
    with pytest.raises(Crash):
        await Reminders(db, CONFIG, sink, clock=clock).tick(GUILD)
    sink.crash = None
    again = Reminders(db, CONFIG, sink, clock=clock)  # the next start, on the same database
    clock.at(MINUTE)
    assert await again.tick(GUILD) == 0  # in flight a minute ago: left alone
    assert sink.looked == []
    clock.at(IN_FLIGHT)
    assert await again.tick(GUILD) == 0  # looked for, found: recorded, not sent
    assert sink.looked == [sink.texts[0].splitlines()[0]]
    assert len(sink.posts) == 1
    [row] = await rows(db)
    assert row.count == 1 and row.intent_text is None
    assert row.last_sent_at == clock.now - MINUTE - IN_FLIGHT  # when it really went out
    clock.at(24 * HOUR - MINUTE - IN_FLIGHT)
    assert await again.tick(GUILD) == 1
    assert sink.texts[1].startswith("⏰ **Reminder 2**")


async def test_a_reminder_lost_in_a_crash_is_sent_once_by_the_next_start(
    domain: Conductor, make_reviewed: MakeReviewed, db: Database, sink: FakeSink, clock: Clock
) -> None:
    await assembling(domain, make_reviewed)
    clock.reset()
    clock.at(24 * HOUR)
    sink.crash = "before"  # recorded as being sent; the process dies before Discord has it
    with pytest.raises(Crash):
        await Reminders(db, CONFIG, sink, clock=clock).tick(GUILD)
    sink.crash = None
    again = Reminders(db, CONFIG, sink, clock=clock)
    clock.at(IN_FLIGHT)
    assert await again.tick(GUILD) == 1
    assert await again.tick(GUILD) == 0
    assert len(sink.looked) == 1 and len(sink.posts) == 1
    assert sink.texts[0].startswith("⏰ **Reminder 1**")
    [row] = await rows(db)
    assert row.count == 1 and row.intent_text is None


async def test_a_refused_reminder_is_tried_again_later_not_at_every_round(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    reminders: Reminders,
    sink: FakeSink,
    clock: Clock,
) -> None:
    await assembling(domain, make_reviewed)
    clock.reset()
    clock.at(24 * HOUR)
    sink.down = True
    assert await reminders.tick(GUILD) == 0
    sink.down = False
    for _ in range(9):
        clock.at(MINUTE)
        assert await reminders.tick(GUILD) == 0
    clock.at(MINUTE)
    assert await reminders.tick(GUILD) == 1
    assert len(sink.posts) == 1 and sink.texts[0].startswith("⏰ **Reminder 1**")


async def test_two_processes_on_one_database_send_one_reminder(
    domain: Conductor, make_reviewed: MakeReviewed, db_url: str, sink: FakeSink, clock: Clock
) -> None:
    await assembling(domain, make_reviewed)
    clock.reset()
    clock.at(24 * HOUR)
    databases = [Database(db_url, busy_timeout_ms=RACE_BUSY_TIMEOUT_MS) for _ in range(4)]
    try:
        sent = await asyncio.gather(
            *(Reminders(d, CONFIG, sink, clock=clock).tick(GUILD) for d in databases)
        )
    finally:
        await asyncio.gather(*(d.dispose() for d in databases))
    assert sorted(sent) == [0, 0, 0, 1]
    assert len(sink.posts) == 1


async def test_without_a_sink_nothing_is_due_and_nothing_recorded(
    domain: Conductor, make_reviewed: MakeReviewed, db: Database, clock: Clock
) -> None:
    await assembling(domain, make_reviewed)
    clock.reset()
    clock.at(48 * HOUR)
    assert await Reminders(db, CONFIG, None, clock=clock).tick(GUILD) == 0
    assert await rows(db) == []
