"""The shard leases and identify slots (``conductor.shards``) on each backend: one owner per
shard, the fence, expiry and takeover, a clean release, another shard count kept out, and
processes racing for the same shards and the same identify slot (each with its own engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from conductor.shards import ShardLeases
from store.db import Database
from store.models import ShardLease
from store.types import utcnow


@pytest.fixture
async def engines(db: Database, db_url: str) -> AsyncIterator[Callable[[], Database]]:
    """More databases on the same URL: each a process of its own (its own pool, its own
    writer lock), as two bot processes are."""
    made: list[Database] = []

    def make() -> Database:
        made.append(Database(db_url))
        return made[-1]

    yield make
    for database in made:
        await database.dispose()


async def _expire(db: Database, *shard_ids: int) -> None:
    """The leases run out now (a process that died, without waiting for it)."""
    async with db.write() as session:
        await session.execute(
            update(ShardLease)
            .where(ShardLease.shard_id.in_(shard_ids))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def test_a_free_shard_is_taken_and_held_by_one_process(db: Database) -> None:
    first = ShardLeases(db, 2, owner="a")
    second = ShardLeases(db, 2, owner="b")
    assert await first.claim([0, 1]) == {0: 1, 1: 1}
    assert await second.claim([0, 1]) == {}  # live: b waits
    assert await first.claim([0]) == {0: 1}  # its own again: renewed, the same token
    assert await first.renew({0: 1, 1: 1}) == set()
    holders = await first.holders()
    assert [(h.shard_id, h.owner, h.token) for h in holders] == [(0, "a", 1), (1, "a", 1)]


async def test_a_lease_run_out_is_taken_and_the_old_owner_is_fenced(db: Database) -> None:
    old = ShardLeases(db, 2, owner="old")
    new = ShardLeases(db, 2, owner="new")
    assert await old.claim([0, 1]) == {0: 1, 1: 1}
    await _expire(db, 0)
    assert await new.claim([0, 1]) == {0: 2}  # the token moved: 1 → 2
    # The old owner's renewal names token 1: shard 0 is lost, shard 1 still its own.
    assert await old.renew({0: 1, 1: 1}) == {0}
    assert await new.renew({0: 2}) == set()
    # Even after the new owner's lease runs out, the old token never renews.
    await _expire(db, 0)
    assert await old.renew({0: 1}) == {0}


async def test_a_lease_past_its_time_but_not_taken_is_still_renewed(db: Database) -> None:
    leases = ShardLeases(db, 1, owner="slow")
    held = await leases.claim([0])
    await _expire(db, 0)
    assert await leases.renew(held) == set()
    assert await ShardLeases(db, 1, owner="other").claim([0]) == {}


async def test_a_clean_stop_lets_the_next_process_in_at_once(db: Database) -> None:
    old = ShardLeases(db, 2, owner="old")
    held = await old.claim([0, 1])
    await old.release(held)
    assert await ShardLeases(db, 2, owner="new").claim([0, 1]) == {0: 2, 1: 2}
    await old.release(held)  # taken meanwhile: left to its new owner
    assert await ShardLeases(db, 2, owner="third").claim([0, 1]) == {}


async def test_another_shard_count_waits_until_no_lease_of_the_old_one_is_live(
    db: Database,
) -> None:
    two = ShardLeases(db, 2, owner="two")
    held = await two.claim([0, 1])
    four = ShardLeases(db, 4, owner="four")
    assert await four.claim([2, 3]) == {}  # shards 2 and 3 are free, but guilds overlap
    await two.release(held)
    assert await four.claim([0, 1, 2, 3]) == {0: 2, 1: 2, 2: 1, 3: 1}
    assert await two.claim([0, 1]) == {}


async def test_processes_racing_for_the_same_shards_get_one_owner_each(
    db: Database, engines: Callable[[], Database]
) -> None:
    """Three processes (each its own engine) claim the same shards at once, round after
    round, each round after the leases ran out: every shard has exactly one owner, and the
    losers' renewals fail."""
    processes = [ShardLeases(engines(), 3, owner=f"p{n}", lease_s=60) for n in range(3)]
    for round_ in range(5):
        results = await asyncio.gather(*(p.claim([0, 1, 2]) for p in processes))
        for shard_id in (0, 1, 2):
            owners = [n for n, held in enumerate(results) if shard_id in held]
            assert len(owners) == 1, (round_, shard_id, results)
            assert results[owners[0]][shard_id] == round_ + 1  # one take per round
        holders = {h.shard_id: h.owner for h in await processes[0].holders()}
        for n, held in enumerate(results):
            assert all(holders[s] == f"p{n}" for s in held)
        await _expire(db, 0, 1, 2)


async def test_one_identify_per_bucket_across_processes(
    db: Database, engines: Callable[[], Database]
) -> None:
    """Processes racing for the same bucket's slot: one takes it, the others are told how
    long to wait; another bucket is free meanwhile; the slot is free again after the
    spacing."""
    processes = [ShardLeases(engines(), 4, owner=f"p{n}") for n in range(3)]
    waits = await asyncio.gather(*(p.identify_slot(0, spacing_s=1.0) for p in processes))
    assert sorted(w == 0.0 for w in waits) == [False, False, True]
    assert all(0.0 < w <= 1.0 for w in waits if w)
    assert await processes[0].identify_slot(1, spacing_s=1.0) == 0.0
    await asyncio.sleep(max(waits) + 0.05)
    assert await processes[1].identify_slot(0, spacing_s=1.0) == 0.0
