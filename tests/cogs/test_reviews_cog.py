"""Review reactions through simcord: who counts, the threshold, take-backs, ❌, stale
requests, and reactions made while the bot was stopped."""

from __future__ import annotations

from typing import Any

from bot.sample import GUILD_ID
from conductor.states import TaskState
from conductor.views import Actor
from tests.helpers import World

SUBMIT = "handoff core → submitted\ntitle: Core\nbranch: feat/core"


async def state(world: World, slug: str = "core") -> TaskState:
    return (await world.bot.tasks.card(GUILD_ID, slug)).task.state


def request_message(world: World, index: int = -1) -> Any:
    return world.reviews.history()[index]


async def submitted(world: World) -> Any:
    """bob (the author) hands ``core`` off as submitted; returns the review request message."""
    await world.bob.send(world.handoffs, SUBMIT)
    message = request_message(world)
    assert "**0/2 approvals**" in message.content
    return message


def teammates(world: World, *names: str, roles: list[Any] | None = None) -> list[Any]:
    return [world.guild.add_member(world.env.create_user(n), roles=roles or []) for n in names]


async def test_two_distinct_reviewers_make_the_task_reviewed(world: World) -> None:
    request = await submitted(world)
    carol, dave = teammates(world, "carol", "dave")
    await carol.react(request, "✅")
    assert await state(world) is TaskState.SUBMITTED
    assert "**1/2 approvals**: carol" in request_message(world).content
    await carol.react(request, "❤️")  # other emoji are not reviews
    await dave.react(request, "✅")
    assert await state(world) is TaskState.REVIEWED
    content = request_message(world).content
    assert "✅ **Reviewed** — approved by carol, dave." in content
    assert "React ✅" not in content


async def test_the_author_a_bot_and_a_non_reviewer_do_not_count(world: World) -> None:
    reviewers = world.guild.create_role("Reviewers")
    view = await world.bot.guild_configs.bind(
        GUILD_ID, Actor("admin"), reviewer_role_id=reviewers.id
    )
    world.bot.remember_config(view)
    request = await submitted(world)
    robot = world.guild.add_member(world.env.create_user("robot", bot=True), roles=[reviewers])
    (outsider,) = teammates(world, "outsider")
    (erin,) = teammates(world, "erin", roles=[reviewers])
    await world.bob.react(request, "✅")  # the author
    await robot.react(request, "✅")
    await outsider.react(request, "✅")
    await outsider.react(request, "❌")
    assert await state(world) is TaskState.SUBMITTED
    assert "**0/2 approvals**" in request_message(world).content
    await erin.react(request, "✅")
    assert "**1/2 approvals**: erin" in request_message(world).content
    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.review is not None and [a.name for a in card.review.approvers] == ["erin"]


async def test_removing_a_tick_before_the_threshold_takes_it_back(world: World) -> None:
    request = await submitted(world)
    carol, dave = teammates(world, "carol", "dave")
    await carol.react(request, "✅")
    assert "**1/2 approvals**: carol" in request_message(world).content
    await carol.unreact(request, "✅")
    assert "**0/2 approvals**" in request_message(world).content
    await dave.react(request, "✅")
    assert await state(world) is TaskState.SUBMITTED
    await carol.react(request, "✅")
    assert await state(world) is TaskState.REVIEWED
    await carol.unreact(request, "✅")  # after the threshold: nothing is taken back
    assert await state(world) is TaskState.REVIEWED
    assert "approved by dave, carol" in request_message(world).content


async def test_a_cross_sends_the_task_back_to_building(world: World) -> None:
    request = await submitted(world)
    carol, dave = teammates(world, "carol", "dave")
    await carol.react(request, "✅")
    await dave.react(request, "❌")
    assert await state(world) is TaskState.BUILDING
    content = request_message(world).content
    assert "❌ **Changes requested** by dave: the task is back to building." in content
    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.review is not None and card.review.approvers == ()


async def test_reactions_on_a_stale_request_change_nothing(world: World) -> None:
    first = await submitted(world)
    carol, dave, erin = teammates(world, "carol", "dave", "erin")
    await carol.react(first, "❌")
    await world.bob.send(world.handoffs, "handoff core → submitted")  # round 2
    second = request_message(world)
    assert second.id != first.id and "(round 2)" in second.content
    await dave.react(first, "✅")
    await erin.react(first, "✅")
    await erin.react(first, "❌")
    assert await state(world) is TaskState.SUBMITTED
    assert "**0/2 approvals**" in request_message(world).content
    assert (
        "Changes requested" in next(m for m in world.reviews.history() if m.id == first.id).content
    )
    await dave.react(second, "✅")
    await erin.react(second, "✅")
    assert await state(world) is TaskState.REVIEWED


async def test_reactions_made_while_the_bot_was_stopped_are_counted_on_start(world: World) -> None:
    request = await submitted(world)
    carol, dave, erin = teammates(world, "carol", "dave", "erin")
    await erin.react(request, "✅")
    old = world.bot
    await world.env.shutdown()
    await old.close()
    await carol.react(request, "✅")
    await dave.react(request, "✅")
    await erin.unreact(request, "✅")
    await world.bob.react(request, "✅")  # the author: still not counted
    new = type(old)(old.settings)
    world.env.bot = new
    await world.env.start()
    await world.env.settle()
    world.bot = new
    assert await state(world) is TaskState.REVIEWED
    card = await new.tasks.card(GUILD_ID, "core")
    assert card.review is not None
    assert sorted(a.name for a in card.review.approvers) == ["carol", "dave"]
    assert "✅ **Reviewed** — approved by carol, dave." in request_message(world).content


async def test_the_bot_s_own_reactions_and_edits_are_dropped_before_discord_py_parses_them(
    world: World,
) -> None:
    """Discord echoes every reaction the bot adds and every edit it makes; nothing listens for
    them, so they are dropped before discord.py builds objects for them. A member's reaction
    still reaches the bot (the request reads 1/2), and a member's edit would too."""
    seen: list[tuple[str, int]] = []

    async def reacted(payload: Any) -> None:
        seen.append(("reaction", payload.user_id))

    async def edited(payload: Any) -> None:
        seen.append(("edit", int(payload.data["author"]["id"])))

    world.bot.add_listener(reacted, "on_raw_reaction_add")
    world.bot.add_listener(edited, "on_raw_message_edit")
    request = await submitted(world)  # the bot's ✅ on the handoff, ✅ and ❌ on the request
    assert {str(r.emoji): r.count for r in request.reactions} == {"✅": 1, "❌": 1}
    [carol] = teammates(world, "carol")
    await carol.react(request, "✅")
    assert "**1/2 approvals**: carol" in request_message(world).content  # edited
    await world.bob.edit(world.handoffs.history()[-1], SUBMIT + "\n\nedited")
    await world.env.settle()
    assert seen == [("reaction", carol.id), ("edit", world.bob.id)]
