"""The release lock in the domain: open and ship refused while it stands (its holder too), with
who holds it, why and since when; seals never blocked, a ship started before it finished;
one winner when operators lock at once; takeovers and unlocks recorded."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conductor.bootstrap import Conductor, bootstrap
from conductor.errors import InvalidInput, Locked, LockHeld, NotFound
from conductor.queries import current_lock
from conductor.releases.locks import Locks
from conductor.releases.runs.store import Runs
from conductor.states import LockEventKind, ReleaseState, RunKind, SealStatus
from conductor.views import Actor, LockView
from store.db import Database
from store.models import LockEvent, ReleaseLock, Run
from store.types import utcnow
from tests.helpers import (
    GUILD,
    OPERATOR,
    RACE_BUSY_TIMEOUT_MS,
    TEST_APP,
    FakeNotes,
    FakeRunner,
    MakeReviewed,
    assembled,
    held_for,
    open_run,
    ship,
)

CARL = Actor("carl", 502)
SINCE = datetime(2026, 12, 1, 14, 20, tzinfo=UTC)


@pytest.fixture
def sealed(db: Database, runner: FakeRunner) -> Conductor:
    """The domain with an ``[app]`` (ships are sealed) and a notes sink."""
    return bootstrap(database=db, app=TEST_APP, runner=runner, notes=FakeNotes())


async def test_lock_shows_in_the_status_and_its_holder_may_change_the_reason(
    domain: Conductor,
) -> None:
    outcome = await domain.locks.lock(GUILD, "  db migration tonight ", OPERATOR)
    assert outcome.kind is LockEventKind.LOCKED and outcome.previous is None
    lock = outcome.lock
    assert (lock.holder, lock.holder_id, lock.reason) == ("olga", 501, "db migration tonight")
    status = await domain.releases.status(GUILD)
    assert status.lock == lock == await domain.locks.current(GUILD)

    changed = await domain.locks.lock(GUILD, "db migration, then a reindex", OPERATOR)
    assert changed.kind is LockEventKind.CHANGED
    assert changed.lock.since == lock.since  # the same lock, held since the same time
    assert changed.previous is not None and changed.previous.reason == "db migration tonight"
    events = await domain.locks.events(GUILD)
    assert [(e.kind, e.actor, e.reason, e.previous_reason) for e in events] == [
        (LockEventKind.CHANGED, "olga", "db migration, then a reindex", "db migration tonight"),
        (LockEventKind.LOCKED, "olga", "db migration tonight", None),
    ]
    assert (await domain.locks.current(GUILD + 1)) is None  # one lock per guild, not global


async def test_the_holder_locking_again_for_the_same_reason_changes_nothing(
    domain: Conductor,
) -> None:
    """Two processes of the bot that heard the same /release lock: one lock, one event."""
    first = await domain.locks.lock(GUILD, "db migration tonight", OPERATOR)
    again = await domain.locks.lock(GUILD, " db migration tonight ", OPERATOR)
    assert first.changed and not again.changed
    assert again.lock == first.lock == await domain.locks.current(GUILD)
    events = await domain.locks.events(GUILD)
    assert [e.kind for e in events] == [LockEventKind.LOCKED]


@pytest.mark.parametrize(
    ("reason", "said"),
    [("   ", "Locking needs a reason"), ("x" * 501, "too long (501 characters; at most 500)")],
)
async def test_a_lock_needs_a_reason(domain: Conductor, reason: str, said: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(said)):
        await domain.locks.lock(GUILD, reason, OPERATOR)
    assert await domain.locks.current(GUILD) is None
    assert await domain.locks.events(GUILD) == ()


async def test_open_is_refused_while_locked_naming_holder_reason_and_since(
    domain: Conductor,
) -> None:
    lock = (await domain.locks.lock(GUILD, "db migration", OPERATOR)).lock
    since = lock.since.strftime("%Y-%m-%d %H:%M UTC")
    before = utcnow()
    with pytest.raises(Locked) as refused:
        await domain.releases.open(GUILD, "train", CARL)
    said = str(refused.value)
    held = held_for(said, lock.since, before, utcnow())
    assert said.startswith(
        f"🔒 Can't open a release: the release train is locked by olga since {since} ({held} ago)"
        " — db migration."
    )
    assert "Ask them to `/release unlock`, or take the lock over with `/release lock`" in said
    assert refused.value.lock == lock
    # The holder too: the lock stops the train, it is not a private lane.
    with pytest.raises(Locked, match=re.escape("It is your lock: `/release unlock` first.")):
        await domain.releases.open(GUILD, "train", OPERATOR)
    assert (await domain.releases.status(GUILD)).active is None
    # Another guild's train runs.
    assert (await domain.releases.open(GUILD + 1, "elsewhere", CARL)).state is (
        ReleaseState.ASSEMBLING
    )

    await domain.locks.unlock(GUILD, OPERATOR)
    assert (await domain.releases.open(GUILD, "train", CARL)).state is ReleaseState.ASSEMBLING


async def test_ship_is_refused_while_locked_and_no_run_starts(
    sealed: Conductor, db: Database, make_reviewed: MakeReviewed
) -> None:
    slug = await assembled(sealed, make_reviewed, "t")
    await sealed.locks.lock(GUILD, "freeze for the demo", CARL)
    with pytest.raises(Locked, match="Can't ship: the release train is locked by carl since"):
        await sealed.runs.plan(RunKind.SHIP, GUILD, OPERATOR)
    with pytest.raises(Locked, match=re.escape("— freeze for the demo. Ask them")):
        await ship(sealed)
    # The preflight passed before the lock was taken: the run's own start refuses.
    await sealed.locks.unlock(GUILD, CARL)
    ready = (await sealed.runs.plan(RunKind.SHIP, GUILD, OPERATOR)).release
    await sealed.locks.lock(GUILD, "wait, the dashboards are red", CARL)
    with pytest.raises(Locked, match="the dashboards are red"):
        await ship(sealed, release_slug=ready.slug)
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Run)) == 0
    assert (await sealed.releases.get(GUILD, slug)).state is ReleaseState.ASSEMBLED

    await sealed.locks.unlock(GUILD, CARL)
    outcome = await ship(sealed)
    assert outcome.release.state is ReleaseState.SHIPPED


async def test_a_seal_is_never_blocked_by_the_lock(
    sealed: Conductor, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    slug = await assembled(sealed, make_reviewed, "t")
    runner.then({"/up": "status 503"})
    await ship(sealed)
    await sealed.locks.lock(GUILD, "production is red, hands off", OPERATOR)
    target = await sealed.seals.target(GUILD, None)
    resealed = await sealed.publisher.reseal(GUILD, target, CARL)
    assert resealed.seal.status is SealStatus.GREEN
    assert (await sealed.releases.get(GUILD, slug)).seal_status is SealStatus.GREEN
    assert await sealed.locks.current(GUILD) is not None  # and the lock still stands


async def test_a_ship_started_before_the_lock_still_finishes(
    sealed: Conductor, db: Database, make_reviewed: MakeReviewed
) -> None:
    """The lock stops new ships; a run already under way (here: its process died, its lease
    ran out) is finished by the reconcile, not stranded halfway."""
    slug = await assembled(sealed, make_reviewed, "t")
    dead = Runs(db, owner="dead-process", lease_s=-1)  # started, then the process died
    await open_run(sealed, RunKind.SHIP, slug, runs=dead)
    await sealed.locks.lock(GUILD, "freeze", CARL)
    assert await sealed.runs.resume(GUILD) == 1
    assert (await sealed.releases.get(GUILD, slug)).state is ReleaseState.SHIPPED


async def test_only_the_holder_unlocks_and_every_change_is_recorded(domain: Conductor) -> None:
    with pytest.raises(NotFound, match="not locked; there is nothing to unlock"):
        await domain.locks.unlock(GUILD, OPERATOR)
    lock = (await domain.locks.lock(GUILD, "db migration", OPERATOR)).lock
    with pytest.raises(LockHeld) as refused:
        await domain.locks.unlock(GUILD, CARL)
    said = str(refused.value)
    assert said.startswith("🔒 olga holds the release lock since ")
    assert "Only its holder unlocks it: take it over with `/release lock`" in said
    assert await domain.locks.current(GUILD) == lock

    released = await domain.locks.unlock(GUILD, OPERATOR)
    assert released == lock
    assert await domain.locks.current(GUILD) is None
    [unlocked, locked] = await domain.locks.events(GUILD)
    assert (unlocked.kind, unlocked.actor, unlocked.reason) == (
        LockEventKind.UNLOCKED,
        "olga",
        "db migration",
    )
    assert unlocked.held_since == lock.since and locked.kind is LockEventKind.LOCKED


async def test_another_operator_takes_the_lock_over_recorded(domain: Conductor) -> None:
    lock = (await domain.locks.lock(GUILD, "db migration", OPERATOR)).lock
    with pytest.raises(LockHeld) as held:
        await domain.locks.lock(GUILD, "hotfix window", CARL)
    assert "olga holds the release lock" in str(held.value)
    assert "Taking it over asks you to confirm." in str(held.value)
    assert held.value.lock == lock

    outcome = await domain.locks.take_over(GUILD, "hotfix window", CARL, expected=held.value.lock)
    assert outcome.kind is LockEventKind.TAKEN_OVER and outcome.previous == lock
    now = outcome.lock
    assert (now.holder, now.holder_id, now.reason) == ("carl", 502, "hotfix window")
    assert now.since >= lock.since
    taken = (await domain.locks.events(GUILD))[0]
    assert (taken.kind, taken.actor, taken.reason) == (
        LockEventKind.TAKEN_OVER,
        "carl",
        "hotfix window",
    )
    assert (taken.previous_holder, taken.previous_holder_id, taken.previous_reason) == (
        "olga",
        501,
        "db migration",
    )
    assert taken.held_since == lock.since
    # Now olga is the one who must take it over (or ask carl).
    with pytest.raises(LockHeld, match="carl holds the release lock"):
        await domain.locks.unlock(GUILD, OPERATOR)
    await domain.locks.unlock(GUILD, CARL)


async def test_a_takeover_of_a_lock_that_changed_meanwhile_takes_nothing(
    domain: Conductor,
) -> None:
    first = (await domain.locks.lock(GUILD, "db migration", OPERATOR)).lock
    # While carl's confirmation waits, olga unlocks and locks again: another lock.
    await domain.locks.unlock(GUILD, OPERATOR)
    second = (await domain.locks.lock(GUILD, "db migration, take two", OPERATOR)).lock
    with pytest.raises(LockHeld, match="The lock changed while you confirmed; nothing was taken"):
        await domain.locks.take_over(GUILD, "hotfix", CARL, expected=first)
    assert await domain.locks.current(GUILD) == second
    # Released meanwhile: confirming simply locks.
    await domain.locks.unlock(GUILD, OPERATOR)
    outcome = await domain.locks.take_over(GUILD, "hotfix", CARL, expected=second)
    assert outcome.kind is LockEventKind.LOCKED and outcome.lock.holder == "carl"


async def test_operators_locking_at_once_get_one_winner(db: Database, db_url: str) -> None:
    # Twenty engines on one file, like twenty processes.
    databases = [Database(db_url, busy_timeout_ms=RACE_BUSY_TIMEOUT_MS) for _ in range(20)]
    try:
        results = await asyncio.gather(
            *(
                Locks(d).lock(GUILD, f"reason {i}", Actor(f"op{i}", 700 + i))
                for i, d in enumerate(databases)
            ),
            return_exceptions=True,
        )
    finally:
        await asyncio.gather(*(d.dispose() for d in databases))
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, LockHeld)]
    assert len(winners) == 1 and len(losers) == 19, results
    lock = winners[0].lock
    for loser in losers:
        assert loser.lock == lock
        assert str(loser).startswith(f"🔒 {lock.holder} holds the release lock since ")
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ReleaseLock)) == 1
        assert await session.scalar(select(func.count()).select_from(LockEvent)) == 1


async def test_a_lock_slipped_in_past_the_read_is_refused_by_the_key_naming_its_holder(
    domain: Conductor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process locks between our read and our write (PostgreSQL lets that happen):
    the primary key refuses the second lock, and the loser is told who won."""
    lock = (await domain.locks.lock(GUILD, "db migration", OPERATOR)).lock
    seen: list[bool] = []

    async def read_missing_once(session: AsyncSession, guild_id: int) -> ReleaseLock | None:
        if not seen:
            seen.append(True)
            return None  # the read saw no lock: the other process had not committed yet
        return await current_lock(session, guild_id)

    monkeypatch.setattr("conductor.releases.locks.current_lock", read_missing_once)
    with pytest.raises(LockHeld) as held:
        await domain.locks.lock(GUILD, "hotfix", CARL)
    assert held.value.lock == lock and "olga holds the release lock" in str(held.value)
    monkeypatch.undo()
    assert await domain.locks.current(GUILD) == lock
    assert len(await domain.locks.events(GUILD)) == 1  # the loser's event was rolled back


def test_who_holds_a_lock_is_decided_by_the_id_when_there_is_one() -> None:
    lock = LockView(GUILD, "olga", 501, "x", since=SINCE)
    assert lock.is_holder(Actor("Olga (renamed)", 501))
    assert not lock.is_holder(Actor("olga", 999))
    nameless = LockView(GUILD, "cli", None, "x", since=SINCE)
    assert nameless.is_holder(Actor("cli")) and not nameless.is_holder(Actor("other"))
