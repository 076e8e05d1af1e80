"""The bot's timers outlive a database that goes away: discord.ext.tasks ends a loop at its
first unhandled exception, so a round that raised once stopped the review requests' timer
until the next start, and the notes reconcile logged a traceback every 3 minutes. Through the
real bot in simcord, the timers moved by virtual time, the database file really deleted."""

from __future__ import annotations

import logging

import pytest

from tests.helpers import DatabaseFault, Fault, World

MINUTE = 60
#: the timers whose rounds read the database: (cog, loop, its interval in minutes)
TIMERS = (("ReviewsCog", "post_missing", 2), ("SealCog", "post_missing_notes", 3))


@pytest.mark.parametrize("kind", ["deleted", "replaced"])
async def test_the_timers_run_on_through_a_database_outage_and_say_nothing_twice(
    world: World, caplog: pytest.LogCaptureFixture, kind: Fault
) -> None:
    bot = world.bot
    fault = DatabaseFault(bot.database)
    caplog.set_level(logging.DEBUG, logger="cogs")
    caplog.clear()
    fault.start(kind)
    try:
        await world.env.advance_time(13 * MINUTE)  # six rounds of one, four of the other
    finally:
        fault.stop()
    for cog, loop, _ in TIMERS:
        timer = getattr(bot.get_cog(cog), loop)
        assert timer.is_running() and not timer.failed(), f"{cog}.{loop} stopped"
    # no traceback, round after round: the database says its outage itself, once
    from_cogs = [r for r in caplog.records if r.name.startswith("cogs.")]
    assert [r for r in from_cogs if r.levelno >= logging.WARNING] == []
    waits = [r for r in from_cogs if "wait for the database" in r.getMessage()]
    assert waits, "the rounds did meet the outage"
    # and once it is back, the next rounds run clean
    caplog.clear()
    await world.env.advance_time(7 * MINUTE)
    assert [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("cogs.")
    ] == []
