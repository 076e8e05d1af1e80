"""The permissions a server really gives, through simcord (which enforces channel overwrites,
Send Messages in Threads on thread posts, and role pings only for a mentionable role or a
sender with Mention @everyone).

The bot's role holds everything; a member overwrite on each bound channel leaves the bot
exactly what a test names there, as a locked-down @everyone with a role granting that list
would."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import discord
import pytest
import simcord
from sqlalchemy import update

from bot.client import ConductorBot
from bot.permissions import LABELS, NEEDS, ChannelCheck, ChannelKind, Missing, role_ping_need
from bot.sample import GUILD_ID, OPERATOR_ROLE
from cogs.setup._render import EMBED_LIMIT, permission_fields
from conductor.states import ReleaseState
from store.models import Release
from tests.helpers import World, release_by_commands

#: the README's list before this check, taken literally ("read" as View Channel and Read
#: Message History): no Send Messages in Threads, no Embed Links, no Pin Messages
OLD_LIST = discord.Permissions(
    view_channel=True,
    read_message_history=True,
    send_messages=True,
    add_reactions=True,
    create_public_threads=True,
    manage_messages=True,
)
CHANNEL_OF: Mapping[ChannelKind, str] = {
    "handoffs": "handoffs",
    "reviews": "reviews",
    "notes": "release-notes",
    "deployments": "deployments",
}
#: the seal of the tests' ship: red, so the alert pings
RED = {"/": "text Studio not found"}


def full_list(kind: ChannelKind, *, role_ping: bool = True) -> discord.Permissions:
    """Everything the table asks for in a channel of ``kind`` (and Mention @everyone in the
    notes channel, for an operator role that is not mentionable)."""
    held = discord.Permissions(**{need.permission: True for need in NEEDS[kind]})
    if kind == "notes" and role_ping:
        held.mention_everyone = True
    return held


async def locked_world(
    env: simcord.Env, held: Mapping[ChannelKind, discord.Permissions], *, mentionable: bool
) -> World:
    """The sample guild, the bot holding exactly ``held`` in each bound channel."""
    guild = env.create_guild("Train", id=GUILD_ID)
    operators = guild.create_role(OPERATOR_ROLE, mentionable=mentionable)
    general = guild.create_text_channel("general")
    me = env.bot.user
    assert me is not None
    channels = {}
    for kind, name in CHANNEL_OF.items():
        allow = held[kind]
        deny = discord.Permissions(discord.Permissions.all().value & ~allow.value)
        channels[kind] = guild.create_text_channel(
            name, overwrites={me: discord.PermissionOverwrite.from_pair(allow, deny)}
        )
    olga = guild.add_member(env.create_user("olga"), roles=[operators])
    bob = guild.add_member(env.create_user("bob"))
    await env.settle()
    bot = env.bot
    assert isinstance(bot, ConductorBot)
    return World(
        env,
        bot,
        guild,
        general,
        channels["notes"],
        olga,
        bob,
        channels["handoffs"],
        channels["reviews"],
        channels["deployments"],
        operators,
    )


def admin(world: World) -> Any:
    """A member with Manage Server, to ask ``/conductor config``."""
    admins = world.guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    return world.guild.add_member(world.env.create_user("ada"), roles=[admins])


def missing_fields(result: Any) -> dict[str, str]:
    [embed] = result.response.embeds
    return {str(f.name): str(f.value) for f in embed.fields if "Missing in" in str(f.name)}


def pings(world: World, channel: Any) -> list[tuple[str, list[int], list[int]]]:
    """The bot's messages in ``channel`` that notify someone: (text, users, roles)."""
    out = []
    for message in world.env.backend.messages[channel.id].values():
        if message.author_id == world.bot_id and (message.ping_user_ids or message.ping_role_ids):
            out.append((message.content, list(message.ping_user_ids), list(message.ping_role_ids)))
    return out


@pytest.mark.parametrize("mentionable", [False, True], ids=["role-not-mentionable", "mentionable"])
async def test_with_the_old_list_the_notes_fall_back_to_the_channel_saying_why_and_once(
    simcord_env: simcord.Env, mentionable: bool
) -> None:
    world = await locked_world(
        simcord_env, dict.fromkeys(CHANNEL_OF, OLD_LIST), mentionable=mentionable
    )
    slug = await release_by_commands(world, until="shipped", seal=RED)

    [thread] = [t for t in world.notes.threads if t.name == slug]  # created: it may do that
    assert thread.history() == []  # …but not post in it
    said = [m.content for m in world.notes.history()]
    [notes] = [text for text in said if f"Release notes — `{slug}`" in text]
    assert notes.startswith(
        f"⚠️ Posted here because I may not post in <#{thread.id}> (missing Send Messages in "
        "Threads). `/conductor config` shows what I lack.\n📦 **Release notes"
    )
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.state is ReleaseState.SHIPPED and release.notes_posted_at is not None
    assert release.notes_message_id == next(
        m.id for m in world.notes.history() if m.content == notes
    )
    # The red alert follows the notes there; it pings the operator who shipped, and the role
    # only when the role is mentionable (the bot lacks Mention @everyone).
    [(alert, users, roles)] = pings(world, world.notes)
    assert alert.startswith(f"🚨 <@{world.olga.id}> <@&{world.operators.id}> the smoke seal of")
    assert users == [world.olga.id]
    assert roles == ([world.operators.id] if mentionable else [])

    # As if the process died after Discord took the notes and the alert, before their record:
    # the reconcile finds them in the notes channel and posts nothing again.
    await world.bot.seals.notes_intent(GUILD_ID, slug)
    async with world.bot.database.write() as session:
        await session.execute(update(Release).values(notes_posted_at=None, notes_message_id=None))
    before = [m.content for m in world.notes.history()]
    cog = world.bot.get_cog("RunsCog")
    assert cog is not None
    assert await cog.take_up(world.bot.get_guild(GUILD_ID)) == 1  # type: ignore[attr-defined]
    assert [m.content for m in world.notes.history()] == before
    assert thread.history() == []
    assert (await world.bot.releases.get(GUILD_ID, slug)).notes_message_id == (
        release.notes_message_id
    )

    # And /conductor config names what the old list lacks, and what it breaks.
    shown = missing_fields(await admin(world).slash(world.general, "conductor config"))
    notes_lacks = [
        "Send Messages in Threads",
        "Attach Files",
        *([] if mentionable else ["Mention @everyone, @here, and All Roles"]),
    ]
    assert [line.split("**")[1] for line in shown["⚠️ Missing in #release-notes"].splitlines()] == (
        notes_lacks
    )
    assert [line.split("**")[1] for line in shown["⚠️ Missing in #deployments"].splitlines()] == [
        "Embed Links",
        "Pin Messages",
    ]
    assert set(shown) == {"⚠️ Missing in #release-notes", "⚠️ Missing in #deployments"}


async def test_when_the_notes_channel_refuses_too_the_notes_go_where_the_command_was_given(
    simcord_env: simcord.Env,
) -> None:
    shut = discord.Permissions(full_list("notes").value)
    shut.send_messages = shut.send_messages_in_threads = False
    held = {kind: full_list(kind) for kind in CHANNEL_OF} | {"notes": shut}
    world = await locked_world(simcord_env, held, mentionable=False)
    slug = await release_by_commands(world, until="shipped", seal=RED)

    [thread] = [t for t in world.notes.threads if t.name == slug]
    assert thread.history() == []
    assert not any("Release notes" in m.content for m in world.notes.history())
    [notes] = [m.content for m in world.general.history() if "Release notes —" in m.content]
    assert notes.startswith(
        f"⚠️ Posted here because I may not post in <#{thread.id}> (missing Send Messages in "
        f"Threads), nor in <#{world.notes.id}> (missing Send Messages). "
    )
    [(alert, users, roles)] = pings(world, world.general)  # the alert follows, and pings
    assert "the smoke seal of" in alert and users == [world.olga.id]
    assert roles == [world.operators.id]  # the bot may mention every role in #general
    assert (await world.bot.releases.get(GUILD_ID, slug)).notes_posted_at is not None


def _one_taken(kind: ChannelKind, permission: str) -> Any:
    return pytest.param(kind, permission, id=f"{kind}-{permission}")


ONE_AT_A_TIME = [_one_taken(kind, need.permission) for kind in NEEDS for need in NEEDS[kind]] + [
    _one_taken("notes", "mention_everyone")
]


@pytest.mark.parametrize(("kind", "permission"), ONE_AT_A_TIME)
async def test_config_names_each_missing_permission_and_what_it_breaks(
    simcord_env: simcord.Env, kind: ChannelKind, permission: str
) -> None:
    held = {k: full_list(k) for k in CHANNEL_OF}
    held[kind] = discord.Permissions(
        held[kind].value & ~getattr(discord.Permissions, permission).flag
    )
    world = await locked_world(simcord_env, held, mentionable=False)

    result = await admin(world).slash(world.general, "conductor config")

    channel = world.guild.channels[CHANNEL_OF[kind]]
    needs = {n.permission: n for n in (*NEEDS[kind], role_ping_need(OPERATOR_ROLE))}
    breaks = needs[permission].breaks
    if permission == "view_channel":
        breaks = f"Conductor cannot see this channel: {breaks}"
    assert missing_fields(result) == {
        f"⚠️ Missing in #{CHANNEL_OF[kind]}": f"• **{LABELS[permission]}**: {breaks}"
    }
    [embed] = result.response.embeds
    assert embed.description.endswith(
        f"⚠️ Conductor lacks permissions it needs in {channel.mention}: each is named below."
    )


async def test_the_full_list_is_enough_and_a_mentionable_role_needs_no_mention_everyone(
    simcord_env: simcord.Env,
) -> None:
    held = {kind: full_list(kind, role_ping=False) for kind in CHANNEL_OF}
    world = await locked_world(simcord_env, held, mentionable=True)

    result = await admin(world).slash(world.general, "conductor config")

    assert missing_fields(result) == {}
    [embed] = result.response.embeds
    assert embed.description.endswith("✅ Conductor has every permission it needs in its channels.")
    slug = await release_by_commands(world, until="shipped", seal=RED)
    [thread] = [t for t in world.notes.threads if t.name == slug]
    [(alert, users, roles)] = pings(world, thread)  # in the thread, pinging both
    assert alert.startswith("🚨 ")
    assert users == [world.olga.id] and roles == [world.operators.id]
    assert not any("Posted here because" in m.content for m in thread.history())


async def test_the_check_at_start_logs_a_line_per_channel_lacking_something_once(
    simcord_env: simcord.Env, caplog: pytest.LogCaptureFixture
) -> None:
    world = await locked_world(simcord_env, dict.fromkeys(CHANNEL_OF, OLD_LIST), mentionable=False)
    cog = world.bot.get_cog("SetupCog")
    assert cog is not None
    guild = world.bot.get_guild(GUILD_ID)

    with caplog.at_level(logging.INFO, logger="bot.permissions"):
        await cog.log_permissions(guild)  # type: ignore[attr-defined]
        await cog.log_permissions(guild)  # type: ignore[attr-defined]  # once per process

    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "bot.permissions"]
    notes, deployments = world.notes, world.deployments
    assert lines == [
        (
            logging.WARNING,
            f"guild {GUILD_ID}: in #release-notes (notes, {notes.id}) Conductor lacks: "
            f"Send Messages in Threads ({NEEDS['notes'][2].breaks}); "
            f"Attach Files ({NEEDS['notes'][5].breaks}); "
            f"Mention @everyone, @here, and All Roles ({role_ping_need(OPERATOR_ROLE).breaks})",
        ),
        (
            logging.WARNING,
            f"guild {GUILD_ID}: in #deployments (deployments, {deployments.id}) Conductor lacks: "
            f"Embed Links ({NEEDS['deployments'][2].breaks}); "
            f"Pin Messages ({NEEDS['deployments'][3].breaks})",
        ),
    ]


async def test_the_check_at_start_says_so_in_one_line_when_all_is_well(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    cog = world.bot.get_cog("SetupCog")
    assert cog is not None

    with caplog.at_level(logging.INFO, logger="bot.permissions"):
        await cog.log_permissions(world.bot.get_guild(GUILD_ID))  # type: ignore[attr-defined]

    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "bot.permissions"]
    assert lines == [
        (
            logging.INFO,
            f"guild {GUILD_ID}: Conductor has every permission it needs in its 4 channel(s)",
        )
    ]


def test_config_stays_inside_discords_embed_limit_however_much_is_missing() -> None:
    """Twenty channels lacking everything: the fields that fit, then one saying how many
    more."""
    checks = [
        ChannelCheck(
            1000 + i,
            f"handoffs-{i}",
            ("handoffs",),
            tuple(Missing(n.label, n.breaks * 3) for n in NEEDS["notes"]),
        )
        for i in range(20)
    ]
    embed = discord.Embed(title="Conductor in this server", description="Resolves.")

    line = permission_fields(embed, checks)

    assert len(embed) + len(line) + 100 <= EMBED_LIMIT
    names = [str(f.name) for f in embed.fields]
    assert names[0] == "⚠️ Missing in #handoffs-0" and names[-1] == "⚠️ And more"
    shown = len(names) - 1
    assert 0 < shown < 20
    assert embed.fields[-1].value == (
        f"{20 - shown} more channel(s) lack permissions: fix these, then look again."
    )
    assert line.startswith("⚠️ Conductor lacks permissions it needs in <#1000>, <#1001>")
