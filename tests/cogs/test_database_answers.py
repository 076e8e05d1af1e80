"""A command that meets a database it cannot write, through the real bot in simcord: busy
(another process holds the write lock on the file) or full (a real full disk). The answer
says which and that nothing was changed, never "something went wrong"; the release is as it
was, and once the database takes writes again the same command works."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.client import ConductorBot
from bot.sample import GUILD_ID
from conductor.states import ReleaseState, TaskState
from store.models import Run
from tests.helpers import (
    DatabaseFault,
    World,
    make_bot,
    refused,
    release_by_commands,
    reviewed,
    small_disk,
)

BUSY = (
    "⛔ Conductor's database is busy: another process holds its write lock. Nothing was "
    "changed: try again in a moment."
)
FULL = (
    "⛔ Conductor's database is full: there is no space left to write. Nothing was changed: "
    "an operator must free disk space, then try again."
)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Callable[[bool], None]]:
    with small_disk(tmp_path / "disk") as fill:
        yield fill


@pytest.fixture
async def simcord_bot(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ConductorBot]:
    """The conftest's bot, waiting 200 ms (not 10 s) for a lock another process holds; on a
    small disk of its own for the tests that ask for ``disk``."""
    where = tmp_path
    if "disk" in request.fixturenames:
        request.getfixturevalue("disk")
        where = tmp_path / "disk"
    async with make_bot(where, busy_timeout_ms=200) as bot:
        yield bot


async def assembling(world: World) -> str:
    """``train`` assembling with ``core`` aboard; ``api`` reviewed, waiting."""
    await reviewed(world.bot, "api")
    return await release_by_commands(world, until="assembling")


async def as_it_was(world: World, slug: str, state: ReleaseState) -> None:
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.state is state and release.version is None
    assert [m.slug for m in release.members] == ["core"]
    assert (await world.bot.tasks.card(GUILD_ID, "api")).task.state is TaskState.REVIEWED
    async with world.bot.database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Run)) == 0


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("release add", {"task": "api"}),
        ("release remove", {"task": "core"}),
        ("release assemble", {}),
        ("release open", {"name": "second"}),
    ],
)
async def test_a_command_on_a_busy_database_says_so_and_changes_nothing(
    world: World, command: str, options: dict[str, str]
) -> None:
    slug = await assembling(world)
    fault = DatabaseFault(world.bot.database)
    fault.start("busy")
    result = await world.olga.slash(world.general, command, **options)
    refused(world.env, result, BUSY)
    assert "Something went wrong" not in result.response.content
    fault.stop()
    await as_it_was(world, slug, ReleaseState.ASSEMBLING)


async def test_a_read_on_a_busy_database_is_answered_as_ever(world: World) -> None:
    slug = await assembling(world)
    fault = DatabaseFault(world.bot.database)
    fault.start("busy")
    status = await world.bob.slash(world.general, "release status")
    fault.stop()
    [embed] = status.response.embeds
    assert slug in (embed.title or "") and "`core`" in (embed.description or "")


async def test_a_ship_on_a_busy_database_says_so_and_ships_nothing(world: World) -> None:
    slug = await assembling(world)
    await world.olga.slash(world.general, "release assemble")
    fault = DatabaseFault(world.bot.database)
    fault.start("busy")
    shipped = await world.olga.slash(world.general, "release ship")
    fault.stop()
    # The deferred answer, edited in place: why, not "shipping…" forever
    assert shipped.response.content == f"❌ `{slug}` was not shipped: {BUSY}"
    assert shipped.followups == []
    await as_it_was(world, slug, ReleaseState.ASSEMBLED)
    [thread] = world.notes.threads
    assert not [m for m in thread.history() if "Release notes" in m.content]
    again = await world.olga.slash(world.general, "release ship")  # the lock is gone
    assert again.response.content.startswith(f"🚀 `{slug}` v1 — shipped")


async def test_commands_and_the_ship_on_a_full_disk_say_so_and_change_nothing(
    world: World, disk: Callable[[bool], None]
) -> None:
    slug = await assembling(world)
    disk(True)
    added = await world.olga.slash(world.general, "release add", task="api")
    refused(world.env, added, FULL)
    assembled = await world.olga.slash(world.general, "release assemble")
    refused(world.env, assembled, FULL)
    disk(False)
    await as_it_was(world, slug, ReleaseState.ASSEMBLING)
    await world.olga.slash(world.general, "release assemble")
    disk(True)
    shipped = await world.olga.slash(world.general, "release ship")
    disk(False)
    assert shipped.response.content == f"❌ `{slug}` was not shipped: {FULL}"
    await as_it_was(world, slug, ReleaseState.ASSEMBLED)
    again = await world.olga.slash(world.general, "release ship")  # space again
    assert again.response.content.startswith(f"🚀 `{slug}` v1 — shipped")
