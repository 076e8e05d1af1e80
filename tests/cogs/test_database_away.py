"""PostgreSQL going away under the running bot, through simcord, on a real server of the
test's own: restarted (``pg_ctl restart``) and stopped for 30 s. Commands meanwhile are
answered "cannot be reached, nothing was changed", quickly; handoffs and ✅ given meanwhile are
read back and answered once it is back (the handoffs' catch-up, the reviews' recount); the
first command after it works; a ship in flight pauses and goes on once it is back, its deploy
run once; the bot is never restarted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import simcord
from sqlalchemy import func, select, text

from bot.client import ConductorBot
from bot.sample import GUILD_ID
from cogs.handoffs._cog import BACK_NOTICE
from cogs.runs._cog import PAUSED_WATCH_SECONDS
from conductor.states import ReleaseState, RunStatus, StepStatus, TaskState
from store.errors import DatabaseUnreachable
from store.models import HandoffMessage, Release, Run
from tests.helpers import (
    Origin,
    World,
    deploy_command,
    deploys,
    make_bot,
    outbox,
    release_by_commands,
)
from tests.postgres import Cluster

pytestmark = pytest.mark.backends("postgresql")

#: how long the server stays stopped in the outage test: the issue's 30 s, as a real stop
AWAY_S = 30.0
#: what a command says while the server is away
UNREACHABLE = (
    "⛔ Conductor's database server cannot be reached. Nothing was changed: try again once it "
    "is back; Conductor goes on by itself then."
)
#: the bot's timers that read back what the database missed: the handoffs' catch-up (every
#: 20 s) and the reviews' recount (every 2 min), with the runs' reconcile (every 3 min)
TIMERS_S = 180.0
SUBMIT = "handoff {slug} → submitted\ntitle: {title}\nbranch: feat/{slug}"


@pytest.fixture(scope="module")
def away() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this module's own, so that stopping it touches no other test's
    database; removed after the module."""
    cluster = Cluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def away_url(backend: str, away: Cluster) -> Iterator[str]:
    """An empty database in ``away``, dropped after the test (the server started again first
    if the test left it stopped)."""
    assert backend == "postgresql"
    name = away.create_database()
    try:
        yield away.url(name)
    finally:
        if away.down:
            away.start_server()
        away.drop_database(name)


@pytest.fixture
def deploys_seen(tmp_path: Path) -> Path:
    return outbox(tmp_path) / "deploys.jsonl"


@pytest.fixture
async def simcord_bot(
    tmp_path: Path, away_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[ConductorBot]:
    """The conftest's bot on PostgreSQL; with git and a deploy that writes down each run for
    the tests that take ``origin``."""
    if "origin" in request.fixturenames:
        clone: Path = request.getfixturevalue("clone")
        seen: Path = request.getfixturevalue("deploys_seen")
        bot_maker = make_bot(tmp_path, url=away_url, clone=clone, deploy=deploy_command(seen))
    else:
        bot_maker = make_bot(tmp_path, url=away_url)
    async with bot_maker as bot:
        yield bot


def said(answer: Any) -> str:
    """An answer's text: its content and its embeds' titles and descriptions."""
    message = answer.response
    assert message is not None, answer
    parts = [message.content or ""]
    parts += [f"{e.title or ''}\n{e.description or ''}" for e in message.embeds]
    return "\n".join(parts)


def card_shown(answer: Any) -> bool:
    """``/task show core`` answered with the task's card (not a refusal)."""
    return "Core" in said(answer) and not answer.ephemeral


def reactions(message: Any) -> dict[str, int]:
    return {str(r.emoji): r.count for r in message.reactions}


def by_id(channel: Any) -> dict[int, Any]:
    return {m.id: m for m in channel.history()}


def notices(world: World) -> list[Any]:
    return [m for m in world.handoffs.history() if m.author.id == world.bot_id and not m.reference]


async def submitted(world: World, slug: str = "core") -> Any:
    """``slug`` handed off as submitted; its review request message."""
    await world.bob.send(world.handoffs, SUBMIT.format(slug=slug, title=slug.title()))
    request = world.reviews.history()[-1]
    assert f"`{slug}`" in request.content and "**0/2 approvals**" in request.content
    return request


async def count(bot: ConductorBot, model: Any) -> int:
    async with bot.database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def server_started(bot: ConductorBot) -> Any:
    async with bot.database.read() as session:
        return await session.scalar(text("SELECT pg_postmaster_start_time()"))


def unreachable_errors(env: simcord.Env) -> int:
    """How many commands the bot answered "cannot be reached" (and nothing else went wrong):
    reading them acknowledges them."""
    errors = env.errors
    for error in errors:
        original = getattr(error, "original", error)
        assert isinstance(original, DatabaseUnreachable), repr(error)
    return len(errors)


async def assert_read_back_once(world: World, handoffs: list[Any], requests: int) -> None:
    """Every handoff answered once (a ✅, no second one), stored once; ``requests`` review
    requests posted, each once; the one notice says the database is back."""
    seen = by_id(world.handoffs)
    assert [reactions(seen[m.id]) for m in handoffs] == [{"✅": 1}] * len(handoffs)
    assert await count(world.bot, HandoffMessage) == len(handoffs) + 1  # and core's submit
    assert len(world.reviews.history()) == requests
    [notice] = notices(world)
    assert notice.content == BACK_NOTICE


async def test_a_restart_under_the_running_bot_loses_nothing(world: World, away: Cluster) -> None:
    """``pg_ctl restart`` while agents post and reviewers react: what the database missed is
    read back once it returns, nothing answered twice; the first command after it works,
    on connections the pool made anew."""
    request = await submitted(world)
    carol, dave = (world.guild.add_member(world.env.create_user(n)) for n in ("carol", "dave"))
    before = await server_started(world.bot)
    restarting = asyncio.create_task(asyncio.to_thread(away.restart))
    sent = [await world.bob.send(world.handoffs, "handoff t0 → designed\ntitle: T0")]
    await carol.react(request, "✅")
    commands = 0
    while not restarting.done():  # whatever lands while it restarts (on a quick machine, little)
        i = len(sent)
        sent.append(await world.bob.send(world.handoffs, f"handoff t{i} → designed\ntitle: T{i}"))
        answer = await world.olga.slash(world.general, "task show", slug="core")
        commands += 1
        assert card_shown(answer) or said(answer) == UNREACHABLE, said(answer)
    await restarting
    # the first command after the restart: answered from the database, not "unreachable"
    shown = await world.olga.slash(world.general, "task show", slug="core")
    assert card_shown(shown), said(shown)
    assert await server_started(world.bot) != before  # a real restart: the pool's connections
    await dave.react(request, "✅")
    await world.env.advance_time(TIMERS_S)

    refused = unreachable_errors(world.env)
    assert refused <= commands
    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.task.state is TaskState.REVIEWED
    assert card.review is not None
    assert sorted(a.name for a in card.review.approvers) == ["carol", "dave"]
    seen = by_id(world.handoffs)
    assert [reactions(seen[m.id]) for m in sent] == [{"✅": 1}] * len(sent)
    assert await count(world.bot, HandoffMessage) == len(sent) + 1
    assert len(world.reviews.history()) == 1
    # a notice only if a handoff met the restart, and then one, told the database is back
    assert [n.content for n in notices(world)] in ([], [BACK_NOTICE])


async def test_commands_handoffs_and_reviews_while_the_server_is_stopped_for_30_s(
    world: World, away: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The server stopped for :data:`AWAY_S`: each command is answered "cannot be reached,
    nothing was changed" while it is still stopped (not after a connect timeout: each well
    inside the outage); handoffs get no ✅ and one notice; ✅ on a review request wait. Once
    it is started again (the same bot, no restart of it), the first command works and the
    timers answer every handoff and count every ✅, each once."""
    request = await submitted(world)
    carol, dave = (world.guild.add_member(world.env.create_user(n)) for n in ("carol", "dave"))

    away.stop_server()
    stopped = time.monotonic()
    took: list[float] = []
    for command, options in (
        ("release open", {"name": "during"}),
        ("task show", {"slug": "core"}),
        ("release status", {}),
    ):
        asked = time.perf_counter()
        answer = await world.olga.slash(world.general, command, **options)
        took.append(time.perf_counter() - asked)
        assert answer.ephemeral and answer.response.content == UNREACHABLE, answer.response
    during = [
        await world.bob.send(world.handoffs, "handoff t1 → designed\ntitle: T1"),
        await world.bob.send(world.handoffs, SUBMIT.format(slug="api", title="API")),
        await world.bob.send(world.handoffs, "handoff t2 → designed\ntitle: T2"),
    ]
    await carol.react(request, "✅")
    await dave.react(request, "✅")
    # the timers run against the stopped server: they say nothing, read nothing back
    await world.env.advance_time(TIMERS_S)
    seen = by_id(world.handoffs)
    assert [reactions(seen[m.id]) for m in during] == [{}, {}, {}]
    [notice] = notices(world)
    assert "Conductor can't store handoffs right now" in notice.content
    assert "cannot be reached" in notice.content
    assert len(world.reviews.history()) == 1
    assert "**0/2 approvals**" in world.reviews.history()[0].content  # the ✅ wait
    answered_within = time.monotonic() - stopped
    assert answered_within < AWAY_S, f"everything during the outage took {answered_within:.1f} s"
    await asyncio.sleep(AWAY_S - answered_within)  # the rest of the outage: the server is down
    away.start_server()
    outage = time.monotonic() - stopped

    shown = await world.olga.slash(world.general, "task show", slug="core")
    assert card_shown(shown), said(shown)
    await world.env.advance_time(TIMERS_S)

    assert unreachable_errors(world.env) == 3
    assert outage >= AWAY_S and max(took) < AWAY_S, took
    await assert_read_back_once(world, [*during], requests=2)
    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.task.state is TaskState.REVIEWED
    assert card.review is not None
    assert sorted(a.name for a in card.review.approvers) == ["carol", "dave"]
    assert (await world.bot.tasks.card(GUILD_ID, "api")).task.state is TaskState.SUBMITTED
    assert await count(world.bot, Release) == 0  # the open during the outage changed nothing
    logged = [r.getMessage() for r in caplog.records if "cannot take writes" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].startswith("the database cannot take writes: unreachable")


@pytest.mark.parametrize(
    ("point", "paused_at"),
    [("ship:deploy:running", "deploy"), ("ship:deploy:done", "health")],
    ids=["while-deploying", "after-the-deploy"],
)
async def test_a_ship_in_flight_pauses_and_goes_on_once_the_server_is_back(
    world: World, away: Cluster, origin: Origin, deploys_seen: Path, point: str, paused_at: str
) -> None:
    """The server stopped at ``point`` of a ship (while its deploy runs: the deploy's end is
    what the database cannot take; or just after it): the ship says it paused, the server
    comes back, and the same bot takes the run up from where it stood: the deploy is not run
    again (one line in the file it appends to), the release ships, its notes are posted once."""
    slug = await release_by_commands(world, origin)

    def stop_there(at: str) -> None:
        if at == point and not away.down:
            away.stop_server()

    world.bot.runs.checkpoint = stop_there
    shipped = await world.olga.slash(world.general, "release ship")
    said = shipped.response.content
    assert said.startswith("⛔ Conductor's database server cannot be reached, so the ship of "), (
        said
    )
    assert f"stopped at its {paused_at} step" in said, said
    assert len(deploys(deploys_seen)) == 1
    away.start_server()
    # the paused run's own watch takes it up, well before the runs' reconcile (3 min)
    await world.env.advance_time(PAUSED_WATCH_SECONDS + 1)

    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.state is ReleaseState.SHIPPED and release.version == 1
    assert len(deploys(deploys_seen)) == 1  # the deploy ran once
    async with world.bot.database.read() as session:
        [run] = (await session.scalars(select(Run))).all()
    view = await world.bot.runs.runs.get(run.id)
    assert view.status is RunStatus.DONE
    assert [s.status for s in view.steps] == [StepStatus.DONE] * 5
    [thread] = [t for t in world.notes.threads if t.name == slug]
    said_there = [m.content for m in thread.history()]
    assert len([m for m in said_there if "Release notes" in m]) == 1
    [back] = [m for m in said_there if m.startswith("♻️")]
    assert back.startswith("♻️ Conductor's database is back, so the ship of "), back
    assert back.endswith("goes on: from the health step; what was done is not done again."), back
    assert not any("interrupted" in m for m in said_there)
