"""Discord-level fixtures: the real ConductorBot on its own SQLite file, driven by simcord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import simcord

from bot.client import ConductorBot, create_bot
from bot.settings import Settings
from conductor.views import IncomingMessage, Reactor
from store.db import Database
from tests.fakes import TEST_APP, FakeRunner

GUILD_ID = 424242


@pytest.fixture
async def simcord_bot(tmp_path: Path) -> AsyncIterator[ConductorBot]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    database = Database(url)
    await database.create_all()
    settings = Settings(
        guild_id=GUILD_ID,
        database_url=url,
        handoff_channels=["handoffs"],
        reviews_channel="reviews",
        notes_channel="release-notes",
        deployments_channel="deployments",
        operator_role="Operators",
        required_approvals=2,
        app=TEST_APP,
    )
    bot = create_bot(settings, database=database, smoke_runner=FakeRunner())
    yield bot
    await bot.close()


@dataclass
class World:
    env: simcord.Env
    bot: ConductorBot
    guild: Any
    general: Any
    notes: Any
    olga: Any  # an operator
    bob: Any  # a member without the operator role
    handoffs: Any = None
    reviews: Any = None
    deployments: Any = None
    operators: Any = None  # the operator role

    @property
    def runner(self) -> FakeRunner:
        runner = self.bot.sealer.runner
        assert isinstance(runner, FakeRunner)
        return runner

    @property
    def bot_id(self) -> int:
        assert self.bot.user is not None
        return self.bot.user.id


@pytest.fixture
async def world(simcord_env: simcord.Env) -> World:
    guild = simcord_env.create_guild("Train", id=GUILD_ID)
    operators = guild.create_role("Operators")
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


_ids = iter(range(900_000, 10**9))


async def reviewed(bot: ConductorBot, slug: str, *, depends_on: str | None = None) -> None:
    """A task brought to reviewed through the domain (the handoff and review cogs are tested
    on their own)."""
    text = f"handoff {slug} → submitted\ntitle: {slug.title()}\nbranch: feat/{slug}"
    if depends_on:
        text += f"\ndepends-on: {depends_on}"
    result = await bot.service.apply_handoff(
        IncomingMessage(GUILD_ID, 1, next(_ids), 77, "machoke", "bot", text)
    )
    assert result.review is not None
    message_id = next(_ids)
    await bot.service.attach_review_message(result.review.request_id, 2, message_id)
    for user_id in (601, 602):
        await bot.service.record_approval(GUILD_ID, message_id, Reactor(user_id, f"r{user_id}"))


def refused(env: simcord.Env, result: Any, text: str) -> None:
    """The command was refused with an ephemeral answer containing ``text``, and the refusal
    is the one simcord recorded (so nothing else went wrong)."""
    assert result.ephemeral, result
    assert result.response is not None and text in result.response.content, result.response
    simcord.assert_error(env, contains=text)
