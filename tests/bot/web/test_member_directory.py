"""The bot as the board login's member directory (``ConductorBot.member_roles``), driven by
simcord: a member's roles from the gateway's member cache, a role taken away and a member
who left seen at once, a guild the process does not hold is "cannot tell"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
import simcord

from bot.client import ConductorBot
from bot.sample import GUILD_ID
from bot.web.auth import MembersUnknown
from tests.helpers import make_bot


@pytest.fixture
async def simcord_bot(tmp_path: Path) -> AsyncIterator[ConductorBot]:
    async with make_bot(tmp_path, web={"port": 0}) as bot:
        yield bot


async def test_member_roles_follow_the_gateway(simcord_env: simcord.Env) -> None:
    guild = simcord_env.create_guild("Train", id=GUILD_ID)
    board_role = guild.create_role("Board")
    olga = guild.add_member(simcord_env.create_user("olga"), roles=[board_role])
    stranger = simcord_env.create_user("stranger")
    await simcord_env.settle()
    bot = simcord_env.bot
    assert isinstance(bot, ConductorBot)

    assert bot.member_roles(GUILD_ID, olga.id) == frozenset({GUILD_ID, board_role.id})
    assert bot.member_roles(GUILD_ID, stranger.id) is None
    with pytest.raises(MembersUnknown):
        bot.member_roles(GUILD_ID + 1, olga.id)

    cached = bot.get_guild(GUILD_ID)
    assert cached is not None
    member = cached.get_member(olga.id)
    assert member is not None
    await member.remove_roles(discord.Object(board_role.id))
    await simcord_env.settle()
    assert bot.member_roles(GUILD_ID, olga.id) == frozenset({GUILD_ID})

    guild.remove_member(olga)
    await simcord_env.settle()
    assert bot.member_roles(GUILD_ID, olga.id) is None
