"""``/release ship`` with git, a deploy command and a health URL, through simcord: the one
progress message is the deferred answer edited through each step; a failing deploy is shown
there and in the thread, and nothing ships. Notes that reached the thread before a crash are
found there, not posted again."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.client import ConductorBot
from bot.sample import GUILD_ID
from conductor.states import ReleaseState
from tests.helpers import Origin, World, git, make_bot, release_by_commands


@pytest.fixture
def deploy_command() -> str:
    return "echo deploying $CONDUCTOR_RELEASE $CONDUCTOR_VERSION"


@pytest.fixture
async def simcord_bot(
    tmp_path: Path, clone: Path, deploy_command: str
) -> AsyncIterator[ConductorBot]:
    async with make_bot(tmp_path, clone=clone, deploy=deploy_command) as bot:
        yield bot


async def test_ship_edits_one_progress_message_through_every_step(
    world: World, origin: Origin
) -> None:
    slug = await release_by_commands(world, origin)

    shipped = await world.olga.slash(world.general, "release ship")

    assert shipped.followups == []  # one message: the deferred answer, edited in place
    lines = shipped.response.content.splitlines()
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.state is ReleaseState.SHIPPED and release.merge_sha is not None
    assert lines[0] == f"🚀 `{slug}` v1 — shipped 🟢"
    assert lines[1].startswith(f"✅ deploy: `main` fast-forwarded to `{release.merge_sha[:10]}`")
    assert "deployed as v1 · " in lines[1]
    assert lines[2].startswith("✅ health gate: healthy after 1 check")
    assert lines[3].startswith("✅ state flip: 1 member shipped · ")
    assert lines[4].startswith("🟢 Smoke seal: green — 6/6 checks passed")
    assert lines[5].startswith("📝 notes: https://discord.com/channels/")
    assert git(origin.bare, "rev-parse", "main") == release.merge_sha
    [thread] = [t for t in world.notes.threads if t.name == slug]
    notes = [m.content for m in thread.history() if "Release notes" in m.content]
    assert len(notes) == 1 and f"🌿 RC `release/{slug}`" in notes[0]


@pytest.mark.parametrize("deploy_command", ["echo 'cannot reach the host' >&2; exit 4"])
async def test_a_failing_deploy_is_shown_and_nothing_ships(world: World, origin: Origin) -> None:
    slug = await release_by_commands(world, origin)

    shipped = await world.olga.slash(world.general, "release ship")

    text = shipped.response.content
    assert text.splitlines()[0].startswith(f"🚀 Shipping `{slug}` as v1")
    assert "❌ deploy: the deploy command failed (exit 4)" in text
    assert "▫️ state flip" in text  # never reached
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.state is ReleaseState.ASSEMBLED
    [thread] = [t for t in world.notes.threads if t.name == slug]
    [told] = [m.content for m in thread.history() if "stopped at the deploy step" in m.content]
    assert "cannot reach the host" in told and "stays assembled" in told


async def test_notes_found_in_the_thread_are_not_posted_again(world: World, origin: Origin) -> None:
    slug = await release_by_commands(world, origin)
    await world.olga.slash(world.general, "release ship")
    [thread] = [t for t in world.notes.threads if t.name == slug]
    before = [m.content for m in thread.history()]
    # As if the process died after Discord took the notes but before their record:
    await world.bot.seals.notes_intent(GUILD_ID, slug)
    async with world.bot.database.write() as session:
        from sqlalchemy import update  # noqa: PLC0415

        from store.models import Release  # noqa: PLC0415

        await session.execute(update(Release).values(notes_posted_at=None, notes_message_id=None))

    cog = world.bot.get_cog("RunsCog")
    assert cog is not None
    posted = await cog.take_up(world.bot.get_guild(GUILD_ID))  # type: ignore[attr-defined]

    assert posted == 1  # recorded as posted…
    assert [m.content for m in thread.history()] == before  # …without posting again
    release = await world.bot.releases.get(GUILD_ID, slug)
    notes_id = next(m.id for m in thread.history() if "Release notes" in m.content)
    assert release.notes_message_id == notes_id


async def test_a_ship_that_outlives_its_interaction_token_keeps_its_progress_in_the_channel(
    world: World, origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long deploy and a long health gate outlive the interaction's token (15 minutes): the
    progress goes on in a message of its own in the channel, edited to the end, instead of
    failing to edit the answer."""
    slug = await release_by_commands(world, origin)
    # the module the running bot loaded (each bot's close unloads its extensions' modules)
    runs_edge = importlib.import_module("cogs.release._runs")
    monkeypatch.setattr(runs_edge, "TOKEN_MARGIN", timedelta(0))  # the token is spent

    shipped = await world.olga.slash(world.general, "release ship")

    # the answer was never edited into the progress (its token is spent) ...
    answer = shipped.response
    assert answer is None or "deploy" not in answer.content, answer
    moved = [
        m
        for m in world.general.history()
        if m.author.id == world.bot_id and f"`{slug}`" in m.content and "deploy" in m.content
    ]
    # ... the progress is a message of its own, edited to the end: one, not one a step
    assert len(moved) == 1, [m.content for m in moved]
    assert answer is None or moved[0].id != answer.id
    lines = moved[0].content.splitlines()
    assert lines[0] == f"🚀 `{slug}` v1 — shipped 🟢"
    assert lines[1].startswith("✅ deploy: `main` fast-forwarded to ")
    assert lines[5].startswith("📝 notes: https://discord.com/channels/")
    assert (await world.bot.releases.get(GUILD_ID, slug)).state is ReleaseState.SHIPPED
