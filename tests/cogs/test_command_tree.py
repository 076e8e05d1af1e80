"""Every cog loads, and together they hold exactly the spec's slash commands, no more."""

from __future__ import annotations

from discord import app_commands

from bot.client import EXTENSIONS
from bot.sample import GUILD_ID
from tests.helpers import World

#: PRODUCT.md, "Slash commands"
SPEC = {
    "seal",
    "release open",
    "release add",
    "release remove",
    "release status",
    "release assemble",
    "release ship",
    "release abandon",
    "release rollback",
    "release lock",
    "release unlock",
    "release history",
    "release redeploy",
    "release stats",
    "task show",
    "task list",
    "task size",
    "conductor setup",
    "conductor config",
}


async def test_every_extension_is_loaded(world: World) -> None:
    assert set(world.bot.extensions) == set(EXTENSIONS)


async def test_the_cogs_hold_exactly_the_spec_commands(world: World) -> None:
    found: set[str] = set()
    for cog in world.bot.cogs.values():
        for command in cog.walk_app_commands():
            if isinstance(command, app_commands.Command):
                found.add(command.qualified_name)
    assert found == SPEC


async def test_discord_was_given_exactly_the_spec_commands(world: World) -> None:
    synced = await world.bot.tree.fetch_commands(guild=world.bot.get_guild(GUILD_ID))
    names = {
        f"{group.name} {sub.name}"
        for group in synced
        for sub in group.options
        if isinstance(sub, app_commands.AppCommandGroup)
    }
    # top-level commands: those without subcommands
    names |= {
        c.name
        for c in synced
        if not any(isinstance(o, app_commands.AppCommandGroup) for o in c.options)
    }
    assert names == SPEC
    assert all(c.guild_id == GUILD_ID for c in synced)
