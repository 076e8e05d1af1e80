"""Discord-level fixtures: the real ConductorBot on its own SQLite file, driven by simcord, in
the sample guild (``bot.sample``); and simcord's history read forward as Discord reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import simcord
from simcord.http import router

from bot.client import ConductorBot
from bot.sample import GUILD_ID, OPERATOR_ROLE
from tests.helpers import World, make_bot


@pytest.fixture(autouse=True)
def _history_after_as_discord_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """``GET /channels/{id}/messages?after=X&limit=N``: Discord answers the N messages right
    after X (newest first), which is how discord.py's ``history(after=…)`` pages forward.
    simcord 3.2.1 answers the newest N of all the messages after X, so a reader paging
    forward through more than one page skips the middle. Answered here as Discord does."""
    gets = router._ROUTES["GET"]
    template = ["channels", "{channel_id}", "messages"]
    [original] = [handler for parts, handler in gets if parts == template]

    def history(ctx: router.RequestContext) -> Any:
        params = ctx.params
        if "after" not in params or "before" in params or "around" in params:
            return original(ctx)
        after, limit = int(params["after"]), int(params.get("limit", 50))
        messages = ctx.backend.messages[ctx.int_arg("channel_id")].values()
        window = sorted(m.id for m in messages if m.id > after and not m.is_ephemeral)[:limit]
        if not window:
            return []
        # simcord's own answer, bounded to the N right after X
        ctx.params = {**params, "before": window[-1] + 1}
        return original(ctx)

    patched = [(parts, history if handler is original else handler) for parts, handler in gets]
    monkeypatch.setitem(router._ROUTES, "GET", patched)


@pytest.fixture
async def simcord_bot(tmp_path: Path) -> AsyncIterator[ConductorBot]:
    """The bot of the sample guild sealing ``TEST_APP`` with a ``FakeRunner``; a test file
    whose bot differs (git, a deploy, a short busy timeout…) says how with ``make_bot``."""
    async with make_bot(tmp_path) as bot:
        yield bot


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
