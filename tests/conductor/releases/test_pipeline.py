"""The ship pipeline owns the notes: posted once after the flip and the seal, recorded, the
alert on red; owed when the sink could not post, and posted later by the same pipeline, never
twice, never while the ship itself still holds them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conductor.bootstrap import Conductor, bootstrap
from conductor.releases.runs.sink import PostedNotes
from conductor.states import SealStatus
from conductor.views import Actor
from store.db import Database
from tests.helpers import (
    GUILD,
    OPERATOR,
    ROLE,
    TEST_APP,
    FakeNotes,
    FakeRunner,
    MakeReviewed,
    assembled,
    ship,
)


@pytest.fixture
def notes() -> FakeNotes:
    return FakeNotes()


@pytest.fixture
def domain(db: Database, runner: FakeRunner, notes: FakeNotes) -> Conductor:
    return bootstrap(database=db, app=TEST_APP, runner=runner, notes=notes)


async def test_a_green_ship_posts_its_notes_once_and_records_them(
    domain: Conductor, notes: FakeNotes, make_reviewed: MakeReviewed
) -> None:
    slug = await assembled(domain, make_reviewed, "green")
    outcome = await ship(domain, reply_to="the-command-channel")
    assert outcome.notes is not None and outcome.notes.link.startswith("https://chat/")
    [(posted_slug, messages, reply_to)] = notes.posts
    assert (posted_slug, reply_to) == (slug, "the-command-channel")
    assert messages[0].splitlines()[1] == "🟢 Smoke seal: green — 6/6 checks passed"
    assert "`green-core`" in messages[0]
    assert notes.pings == []  # green pings nobody
    assert notes.changes >= 2  # the board: after the flip and after the notes
    stored = await domain.releases.get(GUILD, slug)
    assert stored.notes_message_id == outcome.notes.message_id
    assert await domain.publisher.post_owed_notes(GUILD) == 0  # nothing owed: never twice
    assert len(notes.posts) == 1


async def test_a_red_ship_pings_the_operator_and_the_role_where_the_notes_went(
    domain: Conductor, notes: FakeNotes, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    slug = await assembled(domain, make_reviewed, "red")
    runner.then({"/signin": "selector form input[type=password] not found"})
    outcome = await ship(domain)
    assert outcome.seal is not None and outcome.seal.status is SealStatus.RED
    [(posted, text)] = notes.pings
    assert posted == outcome.notes and posted.channel == f"thread-of-{slug}"
    assert text.startswith(f"🚨 <@{OPERATOR.id}> {ROLE} the smoke seal of `{slug}` v1 is **red**")
    assert f"git revert -m 1 <merge_sha> && bin/deploy {slug} v1" in text


async def test_notes_the_sink_could_not_post_are_owed_and_posted_later_once(
    domain: Conductor, notes: FakeNotes, make_reviewed: MakeReviewed
) -> None:
    notes.down = True
    slug = await assembled(domain, make_reviewed, "later")
    outcome = await ship(domain)
    assert outcome.notes is None and notes.posts == []
    assert [r.slug for r in await domain.seals.notes_owed(GUILD)] == [slug]
    assert await domain.publisher.post_owed_notes(GUILD) == 0  # still down: still owed
    notes.down = False
    assert await domain.publisher.post_owed_notes(GUILD) == 1
    [(posted_slug, messages, _)] = notes.posts
    assert posted_slug == slug
    assert messages[0].splitlines()[1] == "🟢 Smoke seal: green — 6/6 checks passed"  # stored
    assert await domain.publisher.post_owed_notes(GUILD) == 0
    assert await domain.seals.notes_owed(GUILD) == ()


async def test_the_reconcile_leaves_a_ship_in_flight_alone(
    domain: Conductor, notes: FakeNotes, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    await assembled(domain, make_reviewed, "inflight")
    runner.gate = asyncio.Event()
    runner.started.clear()
    shipping = asyncio.create_task(ship(domain))
    await asyncio.wait_for(runner.started.wait(), 60)  # flipped, sealing, no notes yet
    shipped = await domain.releases.get(GUILD, (await domain.seals.target(GUILD, None)).slug)
    assert shipped.notes_posted_at is None
    # Not owed while its run is running (here or in any process): the run posts them.
    assert await domain.seals.notes_owed(GUILD) == ()
    assert await domain.publisher.post_owed_notes(GUILD) == 0
    runner.gate.set()
    outcome = await shipping
    assert outcome.notes is not None and len(notes.posts) == 1


async def test_a_release_flipped_but_never_sealed_is_sealed_before_its_late_notes(
    domain: Conductor, notes: FakeNotes, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    slug = await assembled(domain, make_reviewed, "crashed")
    await domain.releases.ship(GUILD, OPERATOR)  # the process died after the flip
    runner.then({"/up": "status 503"})
    assert await domain.publisher.post_owed_notes(GUILD) == 1
    assert len(runner.calls) == 1
    [(_, messages, _)] = notes.posts
    assert messages[0].splitlines()[1].startswith("🔴 Smoke seal: red — 1 of 6 failed: /up")
    [(_, text)] = notes.pings
    assert text.startswith(f"🚨 <@{OPERATOR.id}> {ROLE} the smoke seal of `{slug}`")  # who shipped
    assert (await domain.releases.get(GUILD, slug)).seal_status is SealStatus.RED


async def test_a_reseal_posts_the_new_line_and_pings_on_red(
    domain: Conductor, notes: FakeNotes, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    slug = await assembled(domain, make_reviewed, "again")
    await ship(domain)
    target = await domain.seals.target(GUILD, None)
    runner.then({"/": "text Studio not found"})
    carl = Actor("carl", 601)
    resealed = await domain.publisher.reseal(GUILD, target, carl, reply_to="here")
    assert resealed.seal.status is SealStatus.RED and resealed.posted is not None
    (_, [line], reply_to) = notes.posts[-1]
    assert reply_to == "here"
    assert line.startswith(f"🔁 Re-sealed `{slug}` v1 by carl (was 🟢 green):\n🔴 Smoke seal: red")
    [(posted, text)] = notes.pings
    assert posted == resealed.posted and text.startswith(f"🚨 <@601> {ROLE} ")


async def test_without_a_sink_the_notes_stay_owed(
    db: Database, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    quiet = bootstrap(database=db, app=TEST_APP, runner=runner)
    await make_reviewed("solo-core")
    slug = (await quiet.releases.open(GUILD, "solo", OPERATOR)).slug
    await quiet.releases.add_task(GUILD, "solo-core", OPERATOR)
    await quiet.releases.assemble(GUILD, OPERATOR)
    outcome = await ship(quiet)
    assert outcome.notes is None and outcome.seal is not None
    assert await quiet.publisher.post_owed_notes(GUILD) == 0
    assert [r.slug for r in await quiet.seals.notes_owed(GUILD)] == [slug]


class SlowNotes(FakeNotes):
    """Discord taking a moment to post: processes racing for the same notes overlap."""

    async def post(self, *args: Any, **kwargs: Any) -> PostedNotes | None:
        await asyncio.sleep(0.02)
        return await super().post(*args, **kwargs)


async def test_processes_owing_the_same_notes_post_them_once(
    db_url: str, runner: FakeRunner, make_reviewed: MakeReviewed, domain: Conductor
) -> None:
    """Three processes (each its own engine and publisher, one Discord) reconcile the same
    owed notes at the same instant, round after round: one posts, the others back off."""
    sink = SlowNotes()
    databases = [Database(db_url) for _ in range(3)]
    processes = [bootstrap(database=d, app=TEST_APP, runner=runner, notes=sink) for d in databases]
    try:
        for round_ in range(3):
            sink.down = True
            slug = await assembled(processes[0], make_reviewed, f"race{round_}")
            await ship(processes[0])
            assert [r.slug for r in await processes[0].seals.notes_owed(GUILD)] == [slug]
            sink.down = False
            posted = await asyncio.gather(*(p.publisher.post_owed_notes(GUILD) for p in processes))
            assert sorted(posted) == [0, 0, 1], round_
            assert [s for s, _, _ in sink.posts].count(slug) == 1
            assert await processes[0].seals.notes_owed(GUILD) == ()
    finally:
        await asyncio.gather(*(d.dispose() for d in databases))
