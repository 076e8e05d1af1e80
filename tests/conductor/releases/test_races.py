"""Concurrency against one SQLite file: each call on its own session (its own Database handle
for the opens, as separate processes would have)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from conductor.bootstrap import Conductor
from conductor.errors import ConductorError, ReleaseActive, ReleaseChanged
from conductor.releases.service import Releases
from conductor.states import ReleaseState, TaskState
from conductor.views import Actor, ReleaseView
from store.db import Database
from tests.helpers import GUILD, OPERATOR, RACE_BUSY_TIMEOUT_MS, UNIQUE_VIOLATION, MakeReviewed


async def test_fifty_concurrent_opens_one_winner(db: Database, db_url: str) -> None:
    # Fifty engines on one file: no shared pool, no shared connection, like fifty processes.
    databases = [Database(db_url, busy_timeout_ms=RACE_BUSY_TIMEOUT_MS) for _ in range(50)]
    try:
        services = [Releases(d) for d in databases]
        results = await asyncio.gather(
            *(s.open(GUILD, f"train {i}", Actor(f"op{i}", i)) for i, s in enumerate(services)),
            return_exceptions=True,
        )
    finally:
        await asyncio.gather(*(d.dispose() for d in databases))
    winners = [r for r in results if isinstance(r, ReleaseView)]
    losers = [r for r in results if isinstance(r, ReleaseActive)]
    assert len(winners) == 1, results
    assert len(losers) == 49, [
        r for r in results if not isinstance(r, (ReleaseView, ReleaseActive))
    ]
    winner = winners[0]
    for loser in losers:
        assert (
            f"Release `{winner.slug}` is already active (assembling), opened by {winner.opened_by}"
            in str(loser)
        )
    async with db.read() as session:
        active = await session.scalar(
            text("SELECT count(*) FROM releases WHERE state IN ('assembling', 'assembled')")
        )
    assert active == 1


async def test_the_database_itself_refuses_a_second_active_release(db: Database) -> None:
    insert = text(
        "INSERT INTO releases (guild_id, slug, name, state, opened_by, opened_at, row_version)"
        " VALUES (:g, :s, 'n', :state, 'o', '2026-01-01 00:00:00', 1)"
    )
    async with db.write() as session:
        await session.execute(insert, {"g": GUILD, "s": "a", "state": "assembling"})
        await session.execute(insert, {"g": GUILD, "s": "old", "state": "shipped"})
        await session.execute(insert, {"g": GUILD, "s": "old2", "state": "abandoned"})
    with pytest.raises(IntegrityError, match=UNIQUE_VIOLATION):
        async with db.write() as session:
            await session.execute(insert, {"g": GUILD, "s": "b", "state": "assembled"})


@pytest.mark.parametrize("rounds", [5])
async def test_ship_against_abandon_exactly_one_wins(
    domain: Conductor, db_url: str, make_reviewed: MakeReviewed, rounds: int
) -> None:
    for round_ in range(rounds):
        slugs = [f"r{round_}-t{i}" for i in range(20)]
        for slug in slugs:
            await make_reviewed(slug)
        release = await domain.releases.open(GUILD, f"race {round_}", OPERATOR)
        for slug in slugs:
            await domain.releases.add_task(GUILD, slug, OPERATOR)
        await domain.releases.assemble(GUILD, OPERATOR)
        # Two separate handles, as two operators' commands in two processes.
        a, b = (Database(db_url, busy_timeout_ms=RACE_BUSY_TIMEOUT_MS) for _ in range(2))
        try:
            ship, abandon = await asyncio.gather(
                Releases(a).ship(GUILD, Actor("olga", 1), release_slug=release.slug),
                Releases(b).abandon(
                    GUILD, "changed my mind", Actor("bob", 2), release_slug=release.slug
                ),
                return_exceptions=True,
            )
        finally:
            await a.dispose()
            await b.dispose()
        outcomes = [ship, abandon]
        won = [o for o in outcomes if isinstance(o, ReleaseView)]
        lost = [o for o in outcomes if isinstance(o, ConductorError)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert isinstance(lost[0], ReleaseChanged)
        assert f"Release `{release.slug}` changed under you" in str(lost[0])
        final = await domain.releases.get(GUILD, release.slug)
        states = {(await domain.tasks.card(GUILD, s)).task.state for s in slugs}
        if final.state is ReleaseState.SHIPPED:
            assert states == {TaskState.SHIPPED}
            assert "it was shipped by olga" in str(lost[0])
        else:
            assert final.state is ReleaseState.ABANDONED
            assert states == {TaskState.REVIEWED}
            assert "it was abandoned by bob" in str(lost[0])
        assert (await domain.releases.status(GUILD)).active is None


async def test_two_ships_one_wins(
    domain: Conductor, db_url: str, make_reviewed: MakeReviewed
) -> None:
    await make_reviewed("x")
    release = await domain.releases.open(GUILD, "twice", OPERATOR)
    await domain.releases.add_task(GUILD, "x", OPERATOR)
    await domain.releases.assemble(GUILD, OPERATOR)
    handles = [Database(db_url, busy_timeout_ms=RACE_BUSY_TIMEOUT_MS) for _ in range(2)]
    try:
        outcomes = await asyncio.gather(
            *(Releases(h).ship(GUILD, OPERATOR, release_slug=release.slug) for h in handles),
            return_exceptions=True,
        )
    finally:
        for h in handles:
            await h.dispose()
    assert sorted(type(o).__name__ for o in outcomes) == ["ReleaseChanged", "ReleaseView"]
    assert (await domain.releases.get(GUILD, release.slug)).version == 1
