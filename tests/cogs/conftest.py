"""Discord-level fixtures: the real ConductorBot on its own SQLite file, driven by simcord, in
the sample guild (``bot.sample``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import simcord

from bot.client import ConductorBot, create_bot
from bot.sample import GUILD_ID, OPERATOR_ROLE, sample_settings
from store.db import Database
from tests.helpers import TEST_APP, FakeRunner, World


@pytest.fixture
async def simcord_bot(tmp_path: Path) -> AsyncIterator[ConductorBot]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    database = Database(url)
    await database.create_all()
    bot = create_bot(
        sample_settings(url, app=TEST_APP), database=database, smoke_runner=FakeRunner()
    )
    yield bot
    await bot.close()


@pytest.fixture
async def world(simcord_env: simcord.Env) -> World:
    guild = simcord_env.create_guild("Train", id=GUILD_ID)
    operators = guild.create_role(OPERATOR_ROLE)
    general = guild.create_text_channel("general")
    notes = guild.create_text_channel("release-notes")
    handoffs, reviews, deployments = (
        guild.create_text_channel(name) for name in ("handoffs", "reviews", "deployments")
    )
    olga = guild.add_member(simcord_env.create_user("olga"), roles=[operators])
    bob = guild.add_member(simcord_env.create_user("bob"))
    await simcord_env.settle()
    bot = simcord_env.bot
    assert isinstance(bot, ConductorBot)
    return World(
        simcord_env,
        bot,
        guild,
        general,
        notes,
        olga,
        bob,
        handoffs,
        reviews,
        deployments,
        operators,
    )
