"""The bot's timers outlive a database that goes away: discord.ext.tasks ends a loop at its
first unhandled exception, so a round that raised once stopped the review requests' timer
until the next start, and the notes reconcile logged a traceback every 3 minutes. Through the
real bot in simcord, the timers moved by virtual time, the database file really deleted.
And a teammate's ✅ made while the database could not take it is counted once it can."""

from __future__ import annotations

import logging

import pytest

from bot.sample import GUILD_ID
from conductor.states import TaskState
from tests.helpers import DatabaseFault, Fault, World

MINUTE = 60
SUBMIT = "handoff core → submitted\ntitle: Core\nbranch: feat/core"
#: the timers whose rounds read the database: (cog, loop, its interval in minutes)
TIMERS = (("ReviewsCog", "post_missing", 2), ("RunsCog", "reconcile", 3))


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


async def task_state(world: World, slug: str = "core") -> TaskState:
    return (await world.bot.tasks.card(GUILD_ID, slug)).task.state


@pytest.mark.parametrize("kind", ["read-only", "deleted"])
async def test_approvals_made_while_the_database_was_down_are_counted_once_it_is_back(
    world: World, kind: Fault
) -> None:
    """Two teammates approve from their phones while the database cannot take it: the ✅
    stay on the message, nothing is counted; the first review round after the database is
    back reads them back from Discord, and the task is reviewed, each approval counted once."""
    await world.bob.send(world.handoffs, SUBMIT)
    request = world.reviews.history()[-1]
    carol, dave = (world.guild.add_member(world.env.create_user(n)) for n in ("carol", "dave"))
    fault = DatabaseFault(world.bot.database)
    fault.start(kind)
    try:
        await carol.react(request, "✅")
        await dave.react(request, "✅")
        await world.env.advance_time(2 * MINUTE)  # a round during the outage: still waiting
    finally:
        fault.stop()
    assert await task_state(world) is TaskState.SUBMITTED
    await world.env.advance_time(2 * MINUTE)  # the first round with the database back
    assert await task_state(world) is TaskState.REVIEWED
    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.review is not None
    assert sorted(a.name for a in card.review.approvers) == ["carol", "dave"]
    assert "✅ **Reviewed** — approved by carol, dave." in world.reviews.history()[-1].content
