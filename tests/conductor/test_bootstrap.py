"""One bootstrap builds the domain: every service on one database, each adapter a parameter
with a real default, and the bot builds through it."""

from __future__ import annotations

from pathlib import Path

from bot.client import create_bot
from bot.sample import sample_settings
from conductor.bootstrap import bootstrap
from smoke.runner import PlaywrightRunner
from store.db import Database
from tests.helpers import TEST_APP, FakeRunner


async def test_the_defaults_are_the_real_adapters(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'defaults.db'}"
    built = bootstrap(database_url=url, app=TEST_APP)
    try:
        assert isinstance(built.sealer.runner, PlaywrightRunner)  # nothing launched yet
        assert built.sealer.configured and built.pipeline.notes is None
        assert str(built.db.engine.url) == url
        services = (built.releases, built.tasks, built.handoffs, built.reviews, built.guilds)
        assert all(s.db is built.db for s in services)
        assert built.seals is built.sealer.records and built.pipeline.sealer is built.sealer
        assert built.pipeline.releases is built.releases
    finally:
        await built.close()


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
