"""The bot builds the domain through ``conductor.bootstrap`` and hands each cog its service;
``bot.create_bot`` (the spec's entry point) is the client's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.client import create_bot
from bot.reminders import DiscordReminders
from bot.sample import sample_settings
from store import migrate
from store.db import Database, SchemaNotAtHead
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
        assert bot.runs is built.runs and bot.runs.parts.notes is bot.discord_notes
        assert bot.publisher is built.publisher and bot.publisher.notes is bot.discord_notes
        assert bot.locks is built.locks and bot.locks.db is db
    finally:
        await bot.close()


def test_the_spec_entry_point_bot_create_bot_is_the_client_s() -> None:
    import bot  # noqa: PLC0415 - the package face, loaded lazily
    from bot import client  # noqa: PLC0415

    assert bot.create_bot is client.create_bot and bot.ConductorBot is client.ConductorBot


@pytest.mark.parametrize("revision", [None, "0003_rc_assembly"])
async def test_a_bot_on_a_database_not_at_head_refuses_to_start(
    db_url: str, revision: str | None
) -> None:
    url = db_url
    if revision is not None:
        await asyncio.to_thread(migrate.upgrade, url, revision)
    bot = create_bot(sample_settings(url), smoke_runner=FakeRunner())
    try:
        with pytest.raises(SchemaNotAtHead) as refused:
            await bot.setup_hook()
        where = f"at {revision}" if revision else "empty (no migration applied)"
        assert str(refused.value) == (
            f"the database is {where}, not at {migrate.head()}: run `conductor db upgrade`"
        )
        assert bot.cogs == {}  # nothing loaded
    finally:
        await bot.close()


async def test_a_bot_on_a_database_at_head_starts(db_url: str) -> None:
    url = db_url
    await asyncio.to_thread(migrate.upgrade, url)
    bot = create_bot(sample_settings(url), smoke_runner=FakeRunner())
    try:
        await bot.database.require_head()  # no refusal
    finally:
        await bot.close()


async def test_the_screenshots_setting_reaches_the_sealer(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = sample_settings("sqlite+aiosqlite://", app=TEST_APP, screenshots_dir="shots")
    bot = create_bot(settings, database=db, smoke_runner=FakeRunner())
    try:
        assert bot.sealer.evidence.root == tmp_path / "shots"  # made absolute at the start
    finally:
        await bot.close()


async def test_the_reminders_setting_and_clock_reach_the_reminders(db: Database) -> None:
    def clock() -> datetime:
        return datetime(2030, 1, 1, tzinfo=UTC)

    settings = sample_settings("sqlite+aiosqlite://", reminders={"lock_after": "off"})
    bot = create_bot(settings, database=db, smoke_runner=FakeRunner(), clock=clock)
    try:
        assert bot.reminders is bot.conductor.reminders
        assert bot.reminders.config.lock_after is None
        assert bot.reminders.config.red_seal_after == timedelta(hours=2)
        assert bot.reminders.clock is clock
        assert isinstance(bot.reminders.sink, DiscordReminders)
        assert bot.reminders.sink.notes is bot.discord_notes
    finally:
        await bot.close()


async def test_with_a_shard_count_the_bot_is_sharded_and_waits_for_its_leases(
    db: Database,
) -> None:
    """Unset, the bot is the plain one (one gateway session, no lease); with a shard count,
    the sharded one on its shards, holding none until it takes their leases, showing no guild
    meanwhile."""
    from bot.shards import ShardedConductorBot  # noqa: PLC0415

    plain = create_bot(sample_settings("sqlite+aiosqlite://"), database=db)
    try:
        assert not isinstance(plain, ShardedConductorBot)
    finally:
        await plain.close()
    settings = sample_settings(
        "sqlite+aiosqlite://", shard_count=4, shard_ids=[1, 3], shard_lease_seconds=3
    )
    # (as ``conductor run`` does: an AutoShardedClient closes only after its setup)
    async with create_bot(settings, database=db) as sharded:
        assert isinstance(sharded, ShardedConductorBot)
        assert (sharded.shard_count, sharded.wanted, sharded.held) == (4, (1, 3), {})
        assert sharded.shard_leases.lease_s == 3
        assert sharded.guilds == []
        assert sharded.gateway_problem() == (
            "waiting for shard(s) [1, 3]: another process holds them"
        )
