"""The pinned board in #deployments: posted on start, edited on each change, re-created when
deleted, and left alone when nothing it shows changed."""

from __future__ import annotations

import dataclasses
from typing import Any

import discord
import pytest

from bot.sample import GUILD_ID
from conductor.views import GuildConfigView
from tests.helpers import World, reviewed


def board(world: World) -> Any:
    [pinned] = world.deployments.pinned_messages()
    assert pinned.author.id == world.bot_id
    return pinned


def board_edits(world: World) -> int:
    return sum(
        1
        for r in world.env.http_requests
        if r.method == "PATCH" and r.path.startswith(f"/channels/{world.deployments.id}/messages/")
    )


async def test_the_board_is_pinned_on_start_and_follows_the_release(world: World) -> None:
    embed = board(world).embeds[0]
    assert embed.title == "🚂 Deployments"
    assert embed.description.startswith("No active release.")
    stored = await world.bot.guild_configs.get(GUILD_ID)
    assert stored is not None and stored.board_message_id == board(world).id

    await reviewed(world.bot, "core")
    await world.olga.slash(world.general, "release open", name="train")
    slug = (await world.bot.releases.status(GUILD_ID)).active.slug  # type: ignore[union-attr]
    assert f"**Active:** 🧩 `{slug}` — assembling" in board(world).embeds[0].description
    await world.olga.slash(world.general, "release add", task="core")
    assert "• `core` — Core · `feat/core`" in board(world).embeds[0].description
    await world.olga.slash(world.general, "release assemble")
    assert f"📦 `{slug}` — assembled" in board(world).embeds[0].description
    await world.olga.slash(world.general, "release ship")
    embed = board(world).embeds[0]
    assert embed.description.startswith("No active release.")
    [latest] = embed.fields
    assert latest.name == "Latest releases" and latest.value == f"🚀 `{slug}` v1 — shipped 🟢"
    assert len(world.deployments.pinned_messages()) == 1  # one board, edited in place


async def test_a_deleted_board_is_posted_again(world: World) -> None:
    first = board(world)
    mods = world.guild.create_role("Mods", permissions=discord.Permissions(manage_messages=True))
    mod = world.guild.add_member(world.env.create_user("mod"), roles=[mods])
    await mod.delete(first)
    second = board(world)
    assert second.id != first.id
    stored = await world.bot.guild_configs.get(GUILD_ID)
    assert stored is not None and stored.board_message_id == second.id
    await world.olga.slash(world.general, "release open", name="after")
    assert "**Active:**" in board(world).embeds[0].description


async def test_a_change_the_board_does_not_show_edits_nothing(world: World) -> None:
    before = board_edits(world)
    # A task moves (the board is told), but no release shows it: the board looks the same.
    await world.bob.send(world.handoffs, "handoff core → building\ntitle: Core")
    assert board_edits(world) == before
    await world.olga.slash(world.general, "release open", name="train")
    assert board_edits(world) == before + 1


async def test_the_board_is_read_again_only_for_a_move_it_shows(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent's traffic is mostly tasks in no release: their handoffs and reviews leave the
    board as it is and cost it no read; a member's move is read and shown."""
    reads: list[int] = []
    read_board = world.bot.releases.board

    async def counted(guild_id: int, *args: Any) -> Any:
        reads.append(guild_id)
        return await read_board(guild_id, *args)

    monkeypatch.setattr(world.bot.releases, "board", counted)
    await world.bob.send(world.handoffs, "handoff core → building\ntitle: Core\nbranch: feat/core")
    await world.bob.send(world.handoffs, "handoff core → submitted\ntitle: Core")
    [request] = [m for m in world.reviews.history() if m.author.id == world.bot_id]
    for name in ("carol", "dave"):
        member = world.guild.add_member(world.env.create_user(name))
        await member.react(request, "✅")
    assert "✅ **Reviewed**" in world.reviews.history()[0].content
    assert reads == []  # core is reviewed, in no release: nothing the board shows moved

    await world.olga.slash(world.general, "release open", name="train")
    await world.olga.slash(world.general, "release add", task="core")
    assert "• `core` — Core" in board(world).embeds[0].description
    assert len(reads) == 2  # each command read it
    # A member moves only by the release's commands (it is assembled on joining); another
    # task's traffic still leaves the board alone.
    edits = board_edits(world)
    await world.bob.send(world.handoffs, "handoff search → building\ntitle: Search")
    assert len(reads) == 2 and board_edits(world) == edits


async def test_a_board_another_process_posted_meanwhile_is_kept_and_ours_deleted(
    world: World, monkeypatch: Any
) -> None:
    """Two processes of the bot found no board and both posted one: the board recorded first
    stays (pinned once), the other process deletes its own and edits the kept one."""
    theirs = board(world)  # posted and recorded by "another process"
    stored = world.bot.guild_configs.get

    async def read_before_theirs(guild_id: int) -> GuildConfigView | None:
        # this process read the config before the other one recorded its board
        view = await stored(guild_id)
        return dataclasses.replace(view, board_message_id=None) if view else None

    monkeypatch.setattr(world.bot.guild_configs, "get", read_before_theirs)
    cog: Any = world.bot.get_cog("BoardCog")  # each bot loads the cog's module anew
    assert cog is not None
    cog._shown.clear()
    await cog.refresh(GUILD_ID)
    await cog.refresher.wait()
    assert [m.id for m in world.deployments.history() if m.embeds] == [theirs.id]
    assert board(world).id == theirs.id
    monkeypatch.undo()
    config = await world.bot.guild_configs.get(GUILD_ID)
    assert config is not None and config.board_message_id == theirs.id
