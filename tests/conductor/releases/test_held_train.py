"""The held train in the domain: while production's release (the last shipped) is red or error,
neither re-sealed green nor rolled back, a release opens only over it by name, and who
confirmed and when is recorded and shown in the new release's notes. And the history of what
shipped."""

from __future__ import annotations

import pytest

from conductor.bootstrap import Conductor, bootstrap
from conductor.errors import HeldTrain, InvalidInput
from conductor.queries import held_by
from conductor.states import ReleaseState, SealStatus
from conductor.views import Actor
from smoke import SmokeResult
from store.db import Database
from store.models import Release
from tests.helpers import (
    GUILD,
    OPERATOR,
    TEST_APP,
    FakeNotes,
    FakeRunner,
    MakeReviewed,
    assembled,
    roll_back_by_machine,
    ship,
)

CARL = Actor("carl", 502)
RED = {"/up": "status 503", "/signin": "selector form input[type=password] not found"}


@pytest.fixture
def notes() -> FakeNotes:
    return FakeNotes()


@pytest.fixture
def domain(db: Database, runner: FakeRunner, notes: FakeNotes) -> Conductor:
    """Ships are sealed (an ``[app]``) and their notes kept."""
    return bootstrap(database=db, app=TEST_APP, runner=runner, notes=notes)


async def shipped(
    domain: Conductor, make_reviewed: MakeReviewed, runner: FakeRunner, name: str, seal: object
) -> str:
    """``name`` assembled and shipped, its seal ``seal`` (a FakeRunner outcome; None: green)."""
    slug = await assembled(domain, make_reviewed, name)
    if seal is not None:
        runner.then(seal)  # type: ignore[arg-type]
    await ship(domain)
    return slug


async def held(db: Database) -> str | None:
    async with db.read() as session:
        view = await held_by(session, GUILD)
    return view.slug if view is not None else None


async def test_nothing_shipped_unsealed_or_green_holds_nothing(
    db: Database, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    unsealed = bootstrap(database=db, runner=runner)  # no [app]: ships without a seal
    assert await held(db) is None
    slug = await assembled(unsealed, make_reviewed, "plain")
    await ship(unsealed)
    assert (await unsealed.releases.get(GUILD, slug)).seal_status is None
    assert await held(db) is None  # no verdict is not a red one
    assert not (await unsealed.releases.status(GUILD)).held
    view = await unsealed.releases.open(GUILD, "next", OPERATOR)
    assert view.held_over_slug is None and view.held_confirmed_by is None


async def test_a_red_seal_holds_the_train_until_an_operator_confirms_over_it(
    domain: Conductor,
    db: Database,
    runner: FakeRunner,
    notes: FakeNotes,
    make_reviewed: MakeReviewed,
) -> None:
    red = await shipped(domain, make_reviewed, runner, "red", RED)
    assert await held(db) == red
    status = await domain.releases.status(GUILD)
    assert status.held and status.last_shipped is not None and status.last_shipped.slug == red

    with pytest.raises(HeldTrain) as asked:
        await domain.releases.open(GUILD, "next", CARL)
    said = str(asked.value).splitlines()
    assert said[0].startswith(f"⚠️ The train is held: production runs `{red}` v1, sealed 🔴 red on ")
    assert said[0].endswith(", neither re-sealed green nor rolled back.")
    assert said[1:4] == [
        "Failing checks:",
        "• `/up` — status 503",
        "• `/signin` — selector form input[type=password] not found",
    ]
    assert asked.value.held.slug == red
    # A confirmation over another release than the one holding the train is no confirmation.
    with pytest.raises(HeldTrain):
        await domain.releases.open(GUILD, "next", CARL, over_held="some-other-release")
    assert (await domain.releases.status(GUILD)).active is None

    opened = await domain.releases.open(GUILD, "next", CARL, over_held=red)
    assert (opened.held_over_slug, opened.held_over_seal) == (red, SealStatus.RED)
    assert (opened.held_confirmed_by, opened.held_confirmed_by_id) == ("carl", 502)
    assert opened.held_confirmed_at is not None and opened.held_confirmed_at == opened.opened_at
    stored = await domain.releases.get(GUILD, opened.slug)
    assert stored.held_over_slug == red and stored.held_confirmed_by == "carl"

    # Its notes say so, under the seal line.
    await make_reviewed("next-core")
    await domain.releases.add_task(GUILD, "next-core", OPERATOR)
    await domain.releases.assemble(GUILD, OPERATOR)
    await ship(domain)
    [first] = [m[0] for slug, m, _ in notes.posts if slug == opened.slug]
    lines = first.splitlines()
    assert lines[1] == "🟢 Smoke seal: green — 6/6 checks passed"
    stamp = int(opened.held_confirmed_at.timestamp())
    assert f"⚠️ Opened over 🔴 red `{red}` — confirmed by carl <t:{stamp}:f>" in lines
    # Production is the green one now: the train runs free.
    assert await held(db) is None


async def test_an_error_seal_holds_the_train_too_and_says_why_it_could_not_run(
    domain: Conductor, db: Database, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    slug = await shipped(
        domain, make_reviewed, runner, "err", SmokeResult.failure("Chromium not found at /x")
    )
    with pytest.raises(HeldTrain) as asked:
        await domain.releases.open(GUILD, "next", OPERATOR)
    said = str(asked.value)
    assert f"production runs `{slug}` v1, sealed ⚠️ error on " in said
    assert "• the seal could not run: Chromium not found at /x" in said
    opened = await domain.releases.open(GUILD, "next", OPERATOR, over_held=slug)
    assert opened.held_over_seal is SealStatus.ERROR


async def test_a_green_reseal_frees_the_train(
    domain: Conductor, db: Database, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    red = await shipped(domain, make_reviewed, runner, "red", RED)
    target = await domain.seals.target(GUILD, None)
    runner.then({"/tasks": "status 500"})  # red again: still held
    await domain.publisher.reseal(GUILD, target, OPERATOR)
    assert await held(db) == red
    await domain.publisher.reseal(GUILD, target, OPERATOR)  # green
    assert await held(db) is None
    opened = await domain.releases.open(GUILD, "next", OPERATOR)
    assert opened.held_over_slug is None and opened.held_confirmed_at is None


async def test_a_confirmation_given_after_the_train_was_freed_records_nothing(
    domain: Conductor, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    """Re-sealed green while the operator's confirmation waited: the release opens over
    nothing, and nothing says it did."""
    red = await shipped(domain, make_reviewed, runner, "red", RED)
    with pytest.raises(HeldTrain):
        await domain.releases.open(GUILD, "next", OPERATOR)
    await domain.publisher.reseal(GUILD, await domain.seals.target(GUILD, None), OPERATOR)
    opened = await domain.releases.open(GUILD, "next", OPERATOR, over_held=red)
    assert opened.held_over_slug is None and opened.held_confirmed_by is None


async def test_a_rollback_frees_the_train_and_production_is_the_release_before(
    domain: Conductor, db: Database, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    green = await shipped(domain, make_reviewed, runner, "green", None)
    red = await shipped(domain, make_reviewed, runner, "red", RED)
    assert await held(db) == red
    await roll_back_by_machine(db, red, CARL)
    assert (await domain.releases.get(GUILD, red)).state is ReleaseState.ROLLED_BACK
    assert await held(db) is None
    status = await domain.releases.status(GUILD)
    assert status.last_shipped is not None and status.last_shipped.slug == green
    assert not status.held
    opened = await domain.releases.open(GUILD, "next", OPERATOR)
    assert opened.held_over_slug is None


async def test_the_production_before_a_rolled_back_one_holds_the_train_if_it_is_red(
    domain: Conductor, db: Database, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    """Held is about what production runs: roll back to a release whose own seal is red and
    the train is held by that one."""
    first = await shipped(domain, make_reviewed, runner, "first", {"/": "status 500"})
    await domain.releases.open(GUILD, "second", OPERATOR, over_held=first)
    await make_reviewed("second-core")
    await domain.releases.add_task(GUILD, "second-core", OPERATOR)
    await domain.releases.assemble(GUILD, OPERATOR)
    second = (await ship(domain)).release.slug
    assert await held(db) is None
    await roll_back_by_machine(db, second)
    assert await held(db) == first


async def test_history_lists_what_shipped_newest_first_with_seals_and_rollbacks(
    domain: Conductor, db: Database, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    v1 = await shipped(domain, make_reviewed, runner, "one", None)
    v2 = await shipped(domain, make_reviewed, runner, "two", None)
    await domain.publisher.reseal(GUILD, await domain.seals.target(GUILD, None), OPERATOR)
    v3 = await shipped(domain, make_reviewed, runner, "three", RED)
    await roll_back_by_machine(db, v3, CARL, reason="checkout broken")
    await domain.releases.open(GUILD, "gone", OPERATOR)
    await domain.releases.abandon(GUILD, "not needed", OPERATOR)  # never shipped: not listed
    await domain.releases.open(GUILD, "active", OPERATOR)  # not shipped yet: not listed

    history = await domain.releases.history(GUILD)
    assert [(h.release.slug, h.release.version, h.release.state) for h in history] == [
        (v3, 3, ReleaseState.ROLLED_BACK),
        (v2, 2, ReleaseState.SHIPPED),
        (v1, 1, ReleaseState.SHIPPED),
    ]
    assert [h.seals for h in history] == [1, 2, 1]
    assert [h.in_production for h in history] == [False, True, False]
    rolled = history[0].release
    assert (rolled.rolled_back_by, rolled.rolled_back_by_id, rolled.rollback_reason) == (
        "carl",
        502,
        "checkout broken",
    )
    assert rolled.rolled_back_at is not None and rolled.seal_status is SealStatus.RED
    assert [h.release.slug for h in await domain.releases.history(GUILD, 2)] == [v3, v2]

    for count in (0, 26, -1):
        with pytest.raises(InvalidInput, match=f"1 to 25 \\(default 10\\); {count} is out"):
            await domain.releases.history(GUILD, count)
    assert await domain.releases.history(GUILD + 1) == ()


async def test_history_stops_at_its_count_newest_first(domain: Conductor, db: Database) -> None:
    """Of 30 shipped releases, the newest 25 at most; only the newest is in production."""
    async with db.write() as session:
        for number in range(1, 31):
            session.add(
                Release(
                    guild_id=GUILD,
                    slug=f"r{number}",
                    name=f"r{number}",
                    state=ReleaseState.SHIPPED,
                    opened_by="olga",
                    version=number,
                )
            )
    history = await domain.releases.history(GUILD, 25)
    assert [h.release.version for h in history] == list(range(30, 5, -1))
    assert history[0].in_production and not any(h.in_production for h in history[1:])
    assert {h.seals for h in history} == {0}  # none was sealed
