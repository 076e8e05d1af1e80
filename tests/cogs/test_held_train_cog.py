"""The held train through simcord: after a red seal, ``/release open`` asks for a confirmation
naming the release and its failing checks (only the asker may press, an operator still, before
it expires); the confirmation is recorded and shown in the new release's notes. After a green
re-seal or a rollback nothing is asked."""

from __future__ import annotations

from typing import Any

import pytest
import simcord

from bot.sample import GUILD_ID
from conductor.states import ReleaseState
from tests.helpers import World, release_by_commands, roll_back_by_machine

RED = {"/up": "status 503", "/signin": "selector form input[type=password] not found"}


def shown(world: World, result: Any) -> Any:
    """The message answering ``result`` as it stands now (edited since, maybe)."""
    return world.env.backend.messages[result.response.channel_id][result.response.id]


def thread_of(world: World, slug: str) -> Any:
    [thread] = [t for t in world.notes.threads if t.name == slug]
    return thread


async def test_open_after_a_red_seal_asks_and_records_who_confirmed(world: World) -> None:
    red = await release_by_commands(world, name="first", until="shipped", seal=RED)
    held = await world.bot.releases.get(GUILD_ID, red)
    assert held.seal_checked_at is not None
    checked = held.seal_checked_at.strftime("%Y-%m-%d %H:%M UTC")

    asked = await world.olga.slash(world.general, "release open", name="second")
    assert not asked.ephemeral  # the team sees the train opened over a red one
    assert asked.response.content == (
        f"⚠️ The train is held: production runs `{red}` v1, sealed 🔴 red on {checked}, "
        "neither re-sealed green nor rolled back.\n"
        "Failing checks:\n"
        "• `/up` — status 503\n"
        "• `/signin` — selector form input[type=password] not found\n"
        f"<@{world.olga.id}> asks to open `second` over it. Open anyway?"
    )
    labels = [c["label"] for row in asked.response.components for c in row["components"]]
    assert labels == ["Open anyway", "Don't open"]
    assert (await world.bot.releases.status(GUILD_ID)).active is None  # asked, not opened

    # Only olga can answer: bob's press is refused.
    other = await world.bob.click(asked.response, label="Open anyway")
    assert other.ephemeral
    assert other.response.content == (
        "Only the operator who asked to open over a held train can confirm it."
    )
    assert (await world.bot.releases.status(GUILD_ID)).active is None

    await world.olga.click(asked.response, label="Open anyway")
    active = (await world.bot.releases.status(GUILD_ID)).active
    assert active is not None and active.slug.endswith("-second")
    assert (active.held_over_slug, active.held_confirmed_by_id) == (red, world.olga.id)
    assert active.held_confirmed_at is not None
    stamp = int(active.held_confirmed_at.timestamp())
    held_line = f"⚠️ Opened over 🔴 red `{red}` — confirmed by olga <t:{stamp}:f>"
    opened = shown(world, asked)
    assert opened.content.startswith(
        f"🧩 Opened `{active.slug}`. Add reviewed tasks with `/release add`.\n{held_line}\nNotes: "
    )
    assert opened.components == []
    assert thread_of(world, active.slug).name == active.slug  # its thread, as any open
    # /release status shows it on the active release.
    embed = (await world.bob.slash(world.general, "release status")).response.embeds[0]
    assert [(f.name, f.value) for f in embed.fields if f.name == "Held train"] == [
        ("Held train", held_line)
    ]

    # Its notes carry the confirmation under the seal line.
    second = await release_by_commands(world, tasks=("fix",), until="shipped", already_open=True)
    assert second == active.slug
    notes = thread_of(world, second).history()[0].content.splitlines()
    assert notes[1] == "🟢 Smoke seal: green — 6/6 checks passed"
    assert held_line in notes


async def test_not_opening_or_letting_it_expire_opens_nothing(world: World) -> None:
    red = await release_by_commands(world, name="first", until="shipped", seal=RED)
    asked = await world.olga.slash(world.general, "release open", name="second")
    await world.olga.click(asked.response, label="Don't open")
    assert shown(world, asked).content == f"Nothing done: `{red}` still holds the train."
    asked = await world.olga.slash(world.general, "release open", name="second")
    await world.env.advance_time(61)
    assert shown(world, asked).content == "⌛ Nothing done: the confirmation expired."
    with pytest.raises(simcord.SetupError):
        await world.olga.click(asked.response, label="Open anyway")
    assert (await world.bot.releases.status(GUILD_ID)).active is None


async def test_a_demoted_operator_cannot_confirm_an_open_asked_before(world: World) -> None:
    await release_by_commands(world, name="first", until="shipped", seal=RED)
    asked = await world.olga.slash(world.general, "release open", name="second")
    world.env.backend.remove_member_role(GUILD_ID, world.olga.id, world.operators.id)
    await world.env.settle()
    pressed = await world.olga.click(asked.response, label="Open anyway")
    assert pressed.response.content == "Only operators can do this: it needs the `Operators` role."
    assert (await world.bot.releases.status(GUILD_ID)).active is None


async def test_a_lock_taken_while_the_confirmation_waited_stops_the_open(world: World) -> None:
    await release_by_commands(world, name="first", until="shipped", seal=RED)
    asked = await world.olga.slash(world.general, "release open", name="second")
    carl = world.guild.add_member(world.env.create_user("carl"), roles=[world.operators])
    await world.env.settle()
    await carl.slash(world.general, "release lock", reason="freeze")
    await world.olga.click(asked.response, label="Open anyway")
    said = shown(world, asked).content
    assert said.startswith(
        "❌ Not opened: 🔒 Can't open a release: the release train is locked by carl since "
    )
    assert (await world.bot.releases.status(GUILD_ID)).active is None


async def test_after_a_green_reseal_open_asks_nothing(world: World) -> None:
    await release_by_commands(world, name="first", until="shipped", seal=RED)
    await world.olga.slash(world.general, "seal")  # green by default
    opened = await world.olga.slash(world.general, "release open", name="second")
    assert opened.response.content.startswith("🧩 Opened `")
    assert opened.response.components == []
    active = (await world.bot.releases.status(GUILD_ID)).active
    assert active is not None and active.held_over_slug is None


async def test_after_a_rollback_open_asks_nothing(world: World) -> None:
    red = await release_by_commands(world, name="first", until="shipped", seal=RED)
    await roll_back_by_machine(world.bot.database, red, guild_id=GUILD_ID)
    assert (await world.bot.releases.get(GUILD_ID, red)).state is ReleaseState.ROLLED_BACK
    opened = await world.olga.slash(world.general, "release open", name="second")
    assert opened.response.content.startswith("🧩 Opened `")
    active = (await world.bot.releases.status(GUILD_ID)).active
    assert active is not None and active.held_over_slug is None


async def test_status_and_board_show_the_train_held_until_it_is_not(world: World) -> None:
    red = await release_by_commands(world, name="first", until="shipped", seal=RED)
    release = await world.bot.releases.get(GUILD_ID, red)
    assert release.shipped_at is not None
    shipped = f"shipped by olga <t:{int(release.shipped_at.timestamp())}:f>"
    production = f"🚀 `{red}` v1 · 🔴 red · {shipped}"
    embed = (await world.bob.slash(world.general, "release status")).response.embeds[0]
    [field] = [f for f in embed.fields if f.name == "Production"]
    assert field.value == (
        f"{production}\n⚠️ The train is held: neither re-sealed green nor rolled back; "
        "`/release open` asks for a confirmation.\n"
        "💸 cost unknown: the one handoff did not report tokens or cost (1 member)"
    )
    [pinned] = world.deployments.pinned_messages()
    assert pinned.embeds[0].description.endswith(
        f"**Production:** {production}\n⚠️ Held: neither re-sealed green nor rolled back."
    )
    await world.olga.slash(world.general, "seal")
    embed = (await world.bob.slash(world.general, "release status")).response.embeds[0]
    [field] = [f for f in embed.fields if f.name == "Production"]
    assert field.value == (
        f"🚀 `{red}` v1 · 🟢 green · {shipped}\n"
        "💸 cost unknown: the one handoff did not report tokens or cost (1 member)"
    )
    [pinned] = world.deployments.pinned_messages()
    assert pinned.embeds[0].description.endswith(
        f"**Production:** 🚀 `{red}` v1 · 🟢 green · {shipped}"
    )
