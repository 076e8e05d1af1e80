"""REST failures (simcord's error injection, 500 and 429) on the bot's message sends: each is
logged, and the domain change either happened and is reported later, or did not happen."""

from __future__ import annotations

import logging

import pytest
import simcord

from bot.sample import GUILD_ID
from conductor.states import ReleaseState, TaskState
from tests.helpers import World, reviewed

SUBMIT = "handoff core → submitted\ntitle: Core\nbranch: feat/core"


@pytest.mark.parametrize("status", [500, 429])
async def test_a_failed_review_post_is_posted_later(
    world: World, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    world.env.inject_error("POST", f"/channels/{world.reviews.id}/messages", status=status)
    with caplog.at_level(logging.WARNING):
        await world.bob.send(world.handoffs, SUBMIT)
    assert "could not post the review request for core" in caplog.text
    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.task.state is TaskState.SUBMITTED  # the handoff happened
    assert card.review is not None and card.review.message_id is None
    assert world.reviews.history() == []
    await world.env.advance_time(121)  # the next round of posting what is missing
    [request] = world.reviews.history()
    assert "**0/2 approvals**" in request.content
    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.review is not None and card.review.message_id == request.id
    carol, dave = (world.guild.add_member(world.env.create_user(n)) for n in ("carol", "dave"))
    await carol.react(request, "✅")
    await dave.react(request, "✅")
    assert (await world.bot.tasks.card(GUILD_ID, "core")).task.state is TaskState.REVIEWED


@pytest.mark.parametrize("status", [500, 429])
async def test_a_failed_acknowledgement_loses_nothing(
    world: World, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    world.env.inject_error(
        "PUT", f"/channels/{world.handoffs.id}/messages/*/reactions/*", status=status
    )
    with caplog.at_level(logging.WARNING):
        sent = await world.bob.send(world.handoffs, SUBMIT)
    assert "could not react ✅ to handoff" in caplog.text
    assert next(m for m in world.handoffs.history() if m.id == sent.id).reactions == []
    assert (await world.bot.tasks.card(GUILD_ID, "core")).task.state is TaskState.SUBMITTED
    assert len(world.reviews.history()) == 1  # the rest of the flow went on


@pytest.mark.parametrize("status", [500, 429])
async def test_a_failed_ship_progress_message_means_no_ship(world: World, status: int) -> None:
    await reviewed(world.bot, "core")
    for command, options in (("release open", {"name": "t"}), ("release add", {"task": "core"})):
        await world.olga.slash(world.general, command, **options)
    await world.olga.slash(world.general, "release assemble")
    # The progress message is the deferred answer, edited in place (PATCH …/@original).
    world.env.inject_error("PATCH", "/webhooks/*", status=status)
    result = await world.olga.slash(world.general, "release ship")
    assert "Something went wrong (ref " in result.response.content
    simcord.assert_error(world.env, contains=str(status))
    active = (await world.bot.releases.status(GUILD_ID)).active
    assert active is not None and active.state is ReleaseState.ASSEMBLED  # not shipped
    retry = await world.olga.slash(world.general, "release ship")
    assert "✅ state flip: 1 member shipped" in retry.response.content


@pytest.mark.parametrize("status", [500, 429])
async def test_a_failed_board_edit_is_caught_up_by_the_next_change(
    world: World, status: int
) -> None:
    world.env.inject_error("PATCH", f"/channels/{world.deployments.id}/messages/*", status=status)
    await world.olga.slash(world.general, "release open", name="train")
    assert (await world.bot.releases.status(GUILD_ID)).active is not None
    [board] = world.deployments.pinned_messages()
    assert board.embeds[0].description.startswith("No active release.")  # that edit failed
    await reviewed(world.bot, "core")
    await world.olga.slash(world.general, "release add", task="core")
    [board] = world.deployments.pinned_messages()
    assert "• `core` — Core" in board.embeds[0].description
