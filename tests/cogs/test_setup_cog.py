"""/conductor setup and /conductor config through simcord: what is stored, what is shown, and
who may do it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord

from bot.client import ConductorBot
from bot.sample import GUILD_ID
from cogs.setup._cog import BOTH_REVIEWER_OPTIONS, NO_OPTIONS
from tests.helpers import World, make_bot, refused

MANAGE_SERVER = (
    "Only members with the Manage Server permission can see or change Conductor's setup."
)


@pytest.fixture
def config_file() -> dict[str, Any]:
    """What the config file says beyond the defaults below; a test parametrizes it."""
    return {}


@pytest.fixture
async def simcord_bot(tmp_path: Path, config_file: dict[str, Any]) -> AsyncIterator[ConductorBot]:
    """conftest's bot, with settings a test can change through ``config_file`` (no
    ``[app]``: unsealed)."""
    async with make_bot(tmp_path, app=None, runner=None, **config_file) as bot:
        yield bot


@pytest.fixture
def ada(world: World) -> Any:
    """A member with Manage Server (through a role), not an operator."""
    admins = world.guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    return world.guild.add_member(world.env.create_user("ada"), roles=[admins])


def fields(result: Any) -> dict[str, str]:
    [embed] = result.response.embeds
    return {str(f.name): str(f.value) for f in embed.fields}


#: no binding stored (the row may exist anyway: it also keeps the board message's id)
NOTHING_STORED: tuple[Any, ...] = ((), None, None, None, None, None, None)


async def stored_bindings(world: World) -> tuple[Any, ...]:
    view = await world.bot.guild_configs.get(GUILD_ID)
    if view is None:
        return NOTHING_STORED
    return (
        view.handoff_channel_ids,
        view.reviews_channel_id,
        view.notes_channel_id,
        view.deployments_channel_id,
        view.operator_role_id,
        view.reviewer_role_id,
        view.updated_by,
    )


def channel(world: World, name: str) -> Any:
    return world.guild.channels[name]


def role(world: World, name: str) -> Any:
    return world.guild.roles[name]


# ---------------------------------------------------------------- /conductor config


async def test_config_shows_the_config_file_bindings(world: World, ada: Any) -> None:
    result = await ada.slash(world.general, "conductor config")

    assert result.ephemeral
    [embed] = result.response.embeds
    assert embed.title == "Conductor in this server"
    assert embed.description == (
        "Everything that is set resolves in this server.\n"
        "✅ Conductor has every permission it needs in its channels."
    )
    assert fields(result) == {
        "Handoff channels": f"{channel(world, 'handoffs').mention}\n_from the config file_",
        "Reviews channel": f"{channel(world, 'reviews').mention}\n_from the config file_",
        "Release notes channel": f"{channel(world, 'release-notes').mention}\n_from the config file_",
        "Deployments channel": f"{channel(world, 'deployments').mention}\n_from the config file_",
        "Operator role": f"{role(world, 'Operators').mention}\n_from the config file_",
        "Reviewer role": "not set: anyone may review",
        "PM role": "not set: no PM bids with /task size",
        "PO role": "not set: no PO bids with /task size",
        "Required approvals": "2\n_from the config file_",
    }


@pytest.mark.parametrize(
    "config_file",
    [
        {
            "handoff_channels": ["handoffs", "agents"],
            "reviews_channel": "ghost-reviews",
            "reviewer_role": "Reviewers",
            "required_approvals": 3,
        }
    ],
)
async def test_config_warns_about_what_does_not_resolve(world: World, ada: Any) -> None:
    result = await ada.slash(world.general, "conductor config")

    [embed] = result.response.embeds
    assert embed.description == (
        "⚠️ Not found in this server: handoff channels, reviews channel, reviewer role. "
        "Bind existing ones with `/conductor setup`.\n"
        "✅ Conductor has every permission it needs in its channels."
    )
    shown = fields(result)
    assert shown["⚠️ Handoff channels"] == (
        f"{channel(world, 'handoffs').mention}, ⚠️ no channel `agents` in this server\n"
        "_from the config file_"
    )
    assert shown["⚠️ Reviews channel"] == (
        "⚠️ no channel `ghost-reviews` in this server\n_from the config file_"
    )
    assert (
        shown["⚠️ Reviewer role"] == "⚠️ no role `Reviewers` in this server\n_from the config file_"
    )
    assert shown["Required approvals"] == "3\n_from the config file_"
    assert "Reviews channel" not in shown  # only the warned name

    # Binding an existing channel over the broken name clears that warning.
    fixed = await ada.slash(world.general, "conductor setup", reviews=channel(world, "general"))
    shown = fields(fixed)
    assert shown["Reviews channel"] == (
        f"{channel(world, 'general').mention}\n_set by /conductor setup_"
    )
    assert "⚠️ Reviews channel" not in shown
    assert "⚠️ Reviewer role" in shown


# ---------------------------------------------------------------- /conductor setup


async def test_setup_binds_every_option(world: World, ada: Any) -> None:
    for name in ("agents", "agents-2", "agents-3", "reviews-2", "notes-2", "deploy-2"):
        world.guild.create_text_channel(name)
    crew = world.guild.create_role("Release Crew")
    reviewers = world.guild.create_role("Reviewers")
    changes: list[int] = []

    async def on_change(guild_id: int) -> None:
        changes.append(guild_id)

    world.bot.add_listener(on_change, "on_conductor_change")

    result = await ada.slash(
        world.general,
        "conductor setup",
        handoffs=channel(world, "agents"),
        handoffs_2=channel(world, "agents-2"),
        handoffs_3=channel(world, "agents-3"),
        reviews=channel(world, "reviews-2"),
        notes=channel(world, "notes-2"),
        deployments=channel(world, "deploy-2"),
        operator_role=crew,
        reviewer_role=reviewers,
    )
    await world.env.settle()

    assert result.ephemeral
    assert result.response.content == (
        "✅ Saved: handoff channels, reviews channel, notes channel, deployments channel, "
        "operator role, reviewer role."
    )
    setup = "\n_set by /conductor setup_"
    expected = {
        "Handoff channels": ", ".join(
            channel(world, n).mention for n in ("agents", "agents-2", "agents-3")
        )
        + setup,
        "Reviews channel": channel(world, "reviews-2").mention + setup,
        "Release notes channel": channel(world, "notes-2").mention + setup,
        "Deployments channel": channel(world, "deploy-2").mention + setup,
        "Operator role": crew.mention + setup,
        "Reviewer role": reviewers.mention + setup,
        "PM role": "not set: no PM bids with /task size",
        "PO role": "not set: no PO bids with /task size",
        "Required approvals": "2\n_from the config file_",
    }
    assert fields(result) == expected
    assert fields(await ada.slash(world.general, "conductor config")) == expected
    assert changes == [GUILD_ID]

    stored = await world.bot.guild_configs.get(GUILD_ID)
    assert stored is not None
    assert stored.handoff_channel_ids == tuple(
        channel(world, n).id for n in ("agents", "agents-2", "agents-3")
    )
    assert stored.reviews_channel_id == channel(world, "reviews-2").id
    assert stored.notes_channel_id == channel(world, "notes-2").id
    assert stored.deployments_channel_id == channel(world, "deploy-2").id
    assert stored.operator_role_id == crew.id
    assert stored.reviewer_role_id == reviewers.id
    assert stored.updated_by == "ada"

    guild = world.bot.get_guild(GUILD_ID)
    assert guild is not None
    bindings = await world.bot.bindings(guild)
    assert bindings.handoff_channel_ids == frozenset(stored.handoff_channel_ids)
    assert bindings.reviews_channel is not None
    assert bindings.reviews_channel.id == channel(world, "reviews-2").id
    assert bindings.notes_channel is not None
    assert bindings.notes_channel.id == channel(world, "notes-2").id
    assert bindings.deployments_channel is not None
    assert bindings.deployments_channel.id == channel(world, "deploy-2").id
    assert bindings.operator_role is not None and bindings.operator_role.id == crew.id
    assert bindings.reviewer_role is not None and bindings.reviewer_role.id == reviewers.id


async def test_a_partial_setup_keeps_the_other_bindings(world: World, ada: Any) -> None:
    for name in ("agents", "agents-2"):
        world.guild.create_text_channel(name)
    general = channel(world, "general")

    first = await ada.slash(world.general, "conductor setup", reviews=general)
    assert first.response.content == "✅ Saved: reviews channel."
    second = await ada.slash(world.general, "conductor setup", notes=general)
    assert second.response.content == "✅ Saved: notes channel."
    shown = fields(second)
    assert shown["Reviews channel"] == f"{general.mention}\n_set by /conductor setup_"
    assert shown["Release notes channel"] == f"{general.mention}\n_set by /conductor setup_"
    assert shown["Handoff channels"] == (
        f"{channel(world, 'handoffs').mention}\n_from the config file_"
    )

    await ada.slash(world.general, "conductor setup", handoffs=channel(world, "agents"))
    # Any handoffs option replaces the whole list with exactly the ones given.
    await ada.slash(world.general, "conductor setup", handoffs_2=channel(world, "agents-2"))
    stored = await world.bot.guild_configs.get(GUILD_ID)
    assert stored is not None
    assert stored.handoff_channel_ids == (channel(world, "agents-2").id,)
    assert stored.reviews_channel_id == general.id
    assert stored.notes_channel_id == general.id
    assert stored.deployments_channel_id is None
    assert stored.operator_role_id is None
    guild = world.bot.get_guild(GUILD_ID)
    assert guild is not None
    bindings = await world.bot.bindings(guild)
    assert bindings.handoff_channel_ids == frozenset({channel(world, "agents-2").id})
    assert bindings.wanted["deployments channel"].source == "config"


async def test_anyone_reviews_drops_the_stored_reviewer_role(world: World, ada: Any) -> None:
    reviewers = world.guild.create_role("Reviewers")
    await ada.slash(world.general, "conductor setup", reviewer_role=reviewers)
    before = await world.bot.guild_configs.get(GUILD_ID)
    assert before is not None and before.reviewer_role_id == reviewers.id

    result = await ada.slash(world.general, "conductor setup", anyone_reviews=True)

    assert (
        result.response.content
        == "✅ Saved. The stored reviewer role is dropped: anyone may review."
    )
    assert fields(result)["Reviewer role"] == "not set: anyone may review"
    stored = await world.bot.guild_configs.get(GUILD_ID)
    assert stored is not None and stored.reviewer_role_id is None
    guild = world.bot.get_guild(GUILD_ID)
    assert guild is not None
    assert (await world.bot.bindings(guild)).reviewer_role is None


@pytest.mark.parametrize("config_file", [{"reviewer_role": "Config Reviewers"}])
async def test_anyone_reviews_says_when_the_config_file_still_names_a_role(
    world: World, ada: Any
) -> None:
    config_reviewers = world.guild.create_role("Config Reviewers")
    await ada.slash(world.general, "conductor setup", reviewer_role=world.guild.create_role("R"))

    result = await ada.slash(world.general, "conductor setup", anyone_reviews=True)

    assert result.response.content == (
        "✅ Saved. The stored reviewer role is dropped, but the config file still names "
        "`Config Reviewers`, so that role still decides who may review."
    )
    assert fields(result)["Reviewer role"] == (
        f"{config_reviewers.mention}\n_from the config file_"
    )


async def test_reviewer_role_and_anyone_reviews_together_are_refused(
    world: World, ada: Any
) -> None:
    reviewers = world.guild.create_role("Reviewers")
    result = await ada.slash(
        world.general, "conductor setup", reviewer_role=reviewers, anyone_reviews=True
    )
    refused(world.env, result, BOTH_REVIEWER_OPTIONS)
    assert await stored_bindings(world) == NOTHING_STORED


@pytest.mark.parametrize("options", [{}, {"anyone_reviews": False}])
async def test_setup_without_options_says_what_they_are(
    world: World, ada: Any, options: dict[str, Any]
) -> None:
    result = await ada.slash(world.general, "conductor setup", **options)
    refused(world.env, result, NO_OPTIONS)
    assert "`handoffs`, `handoffs_2`, `handoffs_3`" in result.response.content
    assert "`operator_role`, `reviewer_role`" in result.response.content
    assert await stored_bindings(world) == NOTHING_STORED


# ---------------------------------------------------------------- who may


async def test_conductor_is_hidden_from_members_without_manage_server(
    world: World, ada: Any
) -> None:
    assert "conductor setup" in ada.available_commands(world.general)
    assert "conductor config" in ada.available_commands(world.general)
    assert "conductor setup" not in world.bob.available_commands(world.general)
    assert "conductor setup" not in world.olga.available_commands(world.general)
    with pytest.raises(simcord.SetupError, match="default-member-permissions"):
        await world.bob.slash(world.general, "conductor config")


async def test_without_manage_server_it_is_refused_even_when_an_admin_shows_it(
    world: World,
) -> None:
    # An admin may override default_permissions in the server settings: the check still holds.
    commands = await world.bot.tree.fetch_commands(guild=discord.Object(GUILD_ID))
    [conductor] = [c for c in commands if c.name == "conductor"]
    world.guild.set_command_permissions(conductor, {world.bob: True})

    result = await world.bob.slash(
        world.general, "conductor setup", reviews=channel(world, "general")
    )
    refused(world.env, result, MANAGE_SERVER)
    assert await stored_bindings(world) == NOTHING_STORED

    config = await world.bob.slash(world.general, "conductor config")
    refused(world.env, config, MANAGE_SERVER)
    assert not config.response.embeds


async def test_setup_binds_the_pm_and_po_roles_and_their_members_may_bid(
    world: World, ada: Any
) -> None:
    """No PM or PO role in the file: nobody may bid until setup binds them; then a member of
    the bound PM role bids, and one of neither role is still refused."""
    pms, pos = world.guild.create_role("Product"), world.guild.create_role("Owners")
    alex = world.guild.add_member(world.env.create_user("alex"), roles=[pms])
    await world.bob.send(world.handoffs, "handoff core → building\ntitle: Core")
    before = await alex.slash(world.general, "task size", slug="core")
    refused(world.env, before, "Nobody can bid on a task's size here: no PM or PO role")
    assert "`/conductor setup pm_role: po_role:`" in before.response.content

    result = await ada.slash(world.general, "conductor setup", pm_role=pms, po_role=pos)

    assert result.response.content == "✅ Saved: PM role, PO role."
    assert fields(result)["PM role"].startswith(f"<@&{pms.id}>")
    stored = await world.bot.guild_configs.get(GUILD_ID)
    assert stored is not None and (stored.pm_role_id, stored.po_role_id) == (pms.id, pos.id)
    asked = await alex.slash(world.general, "task size", slug="core")
    assert asked.ephemeral and "sealed" in asked.response.content.lower()
    chosen = await alex.select(asked.response, ["M"])
    assert "Your PM bid on `core` is **M**" in chosen.response.content
    outsider = await world.bob.slash(world.general, "task size", slug="core")
    refused(world.env, outsider, "Only the PM or the PO can bid on a task's size")
