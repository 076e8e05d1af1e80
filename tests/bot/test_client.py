"""The bot builds the domain through ``conductor.bootstrap`` and hands each cog its service;
``bot.create_bot`` (the spec's entry point) is the client's."""

from __future__ import annotations

from bot.client import create_bot
from bot.sample import sample_settings
from store.db import Database
from tests.helpers import TEST_APP, FakeRunner


async def test_the_bot_builds_through_it_and_hands_each_cog_its_service(db: Database) -> None:
    runner = FakeRunner()
    bot = create_bot(sample_settings("sqlite+aiosqlite://", app=TEST_APP), database=db,
                     smoke_runner=runner)  # fmt: skip
    try:
        built = bot.conductor
        assert built.db is db and bot.database is db
        assert (bot.releases, bot.tasks, bot.handoffs, bot.reviews) == (
            built.releases, built.tasks, built.handoffs, built.reviews,
        )  # fmt: skip
        assert bot.guild_configs is built.guilds and bot.seals is built.seals
        assert bot.sealer is built.sealer and bot.sealer.runner is runner
        assert bot.pipeline is built.pipeline and bot.pipeline.notes is bot.publisher
    finally:
        await bot.close()


def test_the_spec_entry_point_bot_create_bot_is_the_client_s() -> None:
    import bot  # noqa: PLC0415 - the package face, loaded lazily
    from bot import client  # noqa: PLC0415

    assert bot.create_bot is client.create_bot and bot.ConductorBot is client.ConductorBot
