"""The board inside the real bot (driven by simcord): started from ``setup_hook``, its
``/healthz`` following the gateway, stopped by ``close``; a port already taken costs the
board, never the bot; ``[web] enabled = false`` serves nothing."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import simcord

from bot.client import ConductorBot
from bot.sample import GUILD_ID, OPERATOR_ROLE
from tests.helpers import make_bot


@pytest.fixture
def taken() -> Iterator[int]:
    """A port on 127.0.0.1 that something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def web(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``[web]`` table of the bot under test: a free port, unless a test asks for a
    ``"taken"`` one or the board ``"off"`` (indirect parametrization)."""
    wanted = getattr(request, "param", "free")
    if wanted == "off":
        return {"enabled": False}
    if wanted == "taken":
        return {"port": request.getfixturevalue("taken")}
    return {"port": 0}


@pytest.fixture
async def simcord_bot(tmp_path: Path, web: dict[str, Any]) -> AsyncIterator[ConductorBot]:
    async with make_bot(tmp_path, web=web) as bot:
        yield bot


async def started(env: simcord.Env) -> tuple[ConductorBot, Any]:
    """The sample guild, the bot ready in it; the bot and #general."""
    guild = env.create_guild("Train", id=GUILD_ID)
    guild.create_role(OPERATOR_ROLE)
    general = guild.create_text_channel("general")
    for name in ("handoffs", "reviews", "release-notes", "deployments"):
        guild.create_text_channel(name)
    olga = guild.add_member(env.create_user("olga"))
    await env.settle()
    bot = env.bot
    assert isinstance(bot, ConductorBot)
    return bot, (olga, general)


async def fetch(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, json.loads(await response.read())


async def test_the_bot_serves_the_board_and_its_health_and_stops_it_on_close(
    simcord_env: simcord.Env,
) -> None:
    bot, _ = await started(simcord_env)
    server = bot.board_server
    assert server is not None and server.running and server.url is not None
    base = server.url.removesuffix("/deployments")
    assert base.startswith("http://127.0.0.1:")

    status, body = await fetch(base + "/healthz")
    assert (status, body["status"]) == (200, "ok")
    assert body["checks"]["gateway"] == {"ok": True, "detail": "connected"}
    # the configured guild, named as Discord names it
    status, board = await fetch(base + "/deployments.json")
    assert status == 200 and board["guild"] == {"id": str(GUILD_ID), "name": "Train"}

    await bot.ws.close()  # the gateway drops
    status, body = await fetch(base + "/healthz")
    assert status == 503
    assert body["problems"] == ["gateway: disconnected; discord.py is reconnecting"]

    await bot.close()
    assert not server.running
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(base + "/healthz")


@pytest.mark.parametrize("web", ["taken"], indirect=True)
async def test_a_port_already_taken_costs_the_board_not_the_bot(
    simcord_bot: ConductorBot, web: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.web.server"):
        async with simcord.run(simcord_bot) as env:
            bot, (olga, general) = await started(env)
            assert bot.board_server is not None and not bot.board_server.running
            assert bot.is_ready()
            result = await olga.slash(general, "release status")  # the bot works on
            assert result.response is not None
            assert result.response.embeds[0].title == "No active release"
    [line] = [r for r in caplog.records if r.name == "bot.web.server"]
    assert line.levelno == logging.ERROR
    message = line.getMessage()
    assert message == (
        f"the /deployments board cannot listen on 127.0.0.1:{web['port']}: the port is already "
        "in use. The bot runs on without it; set [web] port (CONDUCTOR_WEB_PORT) to a free "
        "port, or enabled = false"
    )


@pytest.mark.parametrize("web", ["off"], indirect=True)
async def test_a_board_turned_off_serves_nothing(simcord_env: simcord.Env) -> None:
    bot, _ = await started(simcord_env)
    assert bot.board_server is None
