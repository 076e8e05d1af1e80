"""The handoff listener through simcord: members, bots and webhooks; ✅, ⚠️ and the reply;
everything stored raw; a message applied once however often it arrives."""

from __future__ import annotations

from typing import Any, cast

import discord
from sqlalchemy import func, select

from bot.sample import GUILD_ID
from cogs.handoffs._cog import HandoffsCog
from conductor.states import HandoffOutcome, TaskState
from store.models import HandoffMessage, ReviewRequest, StageEvent
from tests.helpers import World

SUBMIT = (
    "handoff core → submitted\ntitle: Core\nbranch: feat/core\nmodel: opus\ntokens: 1,200\n\nDone."
)


def reactions(message: Any) -> dict[str, int]:
    return {str(r.emoji): r.count for r in message.reactions}


def latest(channel: Any, message_id: int) -> Any:
    return next(m for m in channel.history() if m.id == message_id)


async def raw_rows(world: World) -> list[HandoffMessage]:
    async with world.bot.database.read() as session:
        return list(
            (await session.scalars(select(HandoffMessage).order_by(HandoffMessage.id))).all()
        )


async def count(world: World, model: Any) -> int:
    async with world.bot.database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_members_handoff_is_applied_acknowledged_and_sent_for_review(world: World) -> None:
    sent = await world.bob.send(world.handoffs, SUBMIT)
    assert reactions(latest(world.handoffs, sent.id)) == {"✅": 1}
    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.task.state is TaskState.SUBMITTED and card.task.branch == "feat/core"
    [request] = world.reviews.history()
    assert "`core` — Core" in request.content and "Author: bob" in request.content
    assert "Branch: `feat/core`" in request.content and "**0/2 approvals**" in request.content
    assert "react ✅ to approve, ❌ to request changes" in request.content.lower()
    assert reactions(request) == {"✅": 1, "❌": 1}  # the bot's own, for one-tap reviews
    assert card.review is not None and card.review.message_id == request.id
    [row] = await raw_rows(world)
    assert (row.message_id, row.author_kind, row.author_id) == (sent.id, "user", world.bob.id)
    assert row.text == SUBMIT and row.outcome is HandoffOutcome.APPLIED


async def test_another_bots_handoff_is_heard(world: World) -> None:
    agent = world.guild.add_member(world.env.create_user("machoke", bot=True))
    sent = await agent.send(world.handoffs, "handoff api → designed\ntitle: API")
    assert reactions(latest(world.handoffs, sent.id)) == {"✅": 1}
    assert (await world.bot.tasks.card(GUILD_ID, "api")).task.state is TaskState.DESIGNED
    [row] = await raw_rows(world)
    assert (row.author_kind, row.author_name) == ("bot", "machoke")


async def test_a_webhook_handoff_is_heard(world: World) -> None:
    hook = world.guild.create_webhook(world.handoffs, "ci-agent")
    sent = await hook.send("**handoff** `ui` -> building\ntitle: UI", username="claude")
    assert reactions(latest(world.handoffs, sent.id)) == {"✅": 1}
    assert (await world.bot.tasks.card(GUILD_ID, "ui")).task.state is TaskState.BUILDING
    [row] = await raw_rows(world)
    assert (row.author_kind, row.author_id, row.author_name) == ("webhook", None, "claude")


async def test_a_malformed_handoff_gets_a_warning_and_a_reply_naming_the_line(
    world: World,
) -> None:
    sent = await world.bob.send(
        world.handoffs, "handoff core → submitted\ntitle: Core\nthis is no header"
    )
    assert reactions(latest(world.handoffs, sent.id)) == {"⚠️": 1}
    reply = world.handoffs.last_message
    assert reply.author.id == world.bot_id
    assert reply.reference is not None and reply.reference.message_id == sent.id
    assert reply.content.startswith("⚠️ line 3: ")
    assert '"this is no header"' in reply.content
    [row] = await raw_rows(world)
    assert row.outcome is HandoffOutcome.REJECTED and row.error and row.error.startswith("line 3")
    assert await count(world, StageEvent) == 0


async def test_a_refused_move_names_the_states(world: World) -> None:
    await world.bob.send(world.handoffs, "handoff core → building\ntitle: Core")
    sent = await world.bob.send(world.handoffs, "handoff core → reviewed")
    assert reactions(latest(world.handoffs, sent.id)) == {"⚠️": 1}
    reply = world.handoffs.last_message.content
    assert "reviewed is reached by teammates' ✅ approvals, never by a handoff" in reply
    assert (await world.bot.tasks.card(GUILD_ID, "core")).task.state is TaskState.BUILDING


async def test_chatter_is_stored_raw_without_any_answer(world: World) -> None:
    sent = await world.bob.send(world.handoffs, "anyone seen the CI logs?")
    assert reactions(latest(world.handoffs, sent.id)) == {}
    assert len(world.handoffs.history()) == 1
    [row] = await raw_rows(world)
    assert row.outcome is HandoffOutcome.IGNORED and row.text == "anyone seen the CI logs?"


async def test_other_channels_are_not_read(world: World) -> None:
    await world.bob.send(world.general, SUBMIT)
    assert await raw_rows(world) == []
    assert world.reviews.history() == []


async def test_the_same_message_twice_is_applied_once(world: World) -> None:
    sent = await world.bob.send(world.handoffs, SUBMIT)
    # Bot.close() unloads extensions, so each test's bot holds a freshly imported class.
    cog = cast(HandoffsCog, world.bot.get_cog("HandoffsCog"))
    guild = world.bot.get_guild(GUILD_ID)
    assert guild is not None
    again = await world.bot.get_channel(world.handoffs.id).fetch_message(sent.id)  # type: ignore[union-attr]
    assert isinstance(again, discord.Message)
    result = await cog.handle(guild, again)
    await world.env.settle()
    assert result is not None and result.duplicate
    assert reactions(latest(world.handoffs, sent.id)) == {"✅": 1}
    assert len(world.reviews.history()) == 1
    assert len(await raw_rows(world)) == 1
    assert await count(world, StageEvent) == 1
    assert await count(world, ReviewRequest) == 1


async def test_messages_posted_while_the_bot_was_away_are_caught_up(world: World) -> None:
    await world.bob.send(world.handoffs, "handoff core → building\ntitle: Core")
    old = world.bot
    await world.env.shutdown()
    await old.close()
    await world.bob.send(world.handoffs, "handoff core → submitted")
    await world.bob.send(world.handoffs, "just chatting")
    new = type(old)(old.settings)
    world.env.bot = new
    await world.env.start()
    await world.env.settle()
    try:
        card = await new.tasks.card(GUILD_ID, "core")
        assert card.task.state is TaskState.SUBMITTED
        [request] = world.reviews.history()
        assert request.content.startswith("📨 **Review** `core`")
        assert [r.outcome for r in await raw_rows(world)] == [
            HandoffOutcome.APPLIED,
            HandoffOutcome.APPLIED,
            HandoffOutcome.IGNORED,
        ]
    finally:
        world.bot = new


async def test_the_bindings_follow_the_guild_s_channels_as_they_change(world: World) -> None:
    """The bindings are resolved once and kept (every handoff asks), until Discord says a
    channel changed: a reviews channel deleted and made again under its name gets the next
    request, and a handoff channel renamed away from its configured name is no longer heard."""
    await world.bob.send(world.handoffs, SUBMIT)
    assert len(world.reviews.history()) == 1
    backend = world.env.backend
    backend.delete_channel(world.reviews.id)
    again = world.guild.create_text_channel("reviews")
    await world.env.settle()
    await world.bob.send(world.handoffs, SUBMIT.replace("core", "edge"))
    [request] = again.history()
    assert "`edge`" in request.content

    backend.edit_channel(world.handoffs.id, {"name": "old-handoffs"})
    await world.env.settle()
    sent = await world.bob.send(world.handoffs, "handoff late → designed\ntitle: Late")
    assert reactions(latest(world.handoffs, sent.id)) == {}  # not a handoff channel now
    assert len(await raw_rows(world)) == 2
