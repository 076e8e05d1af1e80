"""A task's conversation through simcord: replies to its review request (and in its thread)
kept, a ❌'s reason in either order, the card's Conversation in order with the handoffs'
notes, its earlier pages, and what is not kept (bots, replies to anything else, a message
seen twice)."""

from __future__ import annotations

from typing import Any, cast

import discord
from sqlalchemy import func, select

from bot.sample import GUILD_ID
from cogs.reviews._conversation import ConversationCog
from conductor.states import CommentKind, TaskState
from store.models import TaskComment
from tests.helpers import World

SUBMIT = "handoff core → submitted\ntitle: Core\nbranch: feat/core\n\nReady: 12/0/0 green."


async def submitted(world: World) -> Any:
    """bob hands ``core`` off as submitted; returns its review request message."""
    await world.bob.send(world.handoffs, SUBMIT)
    request = world.reviews.history()[-1]
    assert "📨 **Review** `core`" in request.content
    return request


def member(world: World, name: str, *, bot: bool = False) -> Any:
    return world.guild.add_member(world.env.create_user(name, bot=bot))


async def comments(world: World) -> list[TaskComment]:
    async with world.bot.database.read() as session:
        return list((await session.scalars(select(TaskComment).order_by(TaskComment.id))).all())


async def card_embed(world: World, slug: str = "core") -> tuple[Any, discord.Embed]:
    shown = await world.olga.slash(world.general, "task show", slug=slug)
    [embed] = shown.response.embeds
    return shown, embed


def field(embed: discord.Embed, name: str) -> str:
    return next(str(f.value) for f in embed.fields if f.name == name)


async def test_a_reply_then_a_cross_sends_the_task_back_with_the_reply_as_its_reason(
    world: World,
) -> None:
    request = await submitted(world)
    carol, dave = member(world, "carol"), member(world, "dave")
    await dave.send(world.reviews, "Looks fine to me", reply_to=request)
    await carol.send(world.reviews, "Tests fail on ARM:\nsee the CI run", reply_to=request)
    await carol.send(world.reviews, "also, the README is stale", reply_to=request)
    await carol.react(request, "❌")

    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.task.state is TaskState.BUILDING
    back = card.timeline[-1]
    assert back.to_state is TaskState.BUILDING and back.reason == "also, the README is stale"
    kinds = [(c.author, c.kind) for c in await comments(world)]
    assert kinds == [
        ("dave", CommentKind.REPLY),
        ("carol", CommentKind.REPLY),
        ("carol", CommentKind.REASON),
    ]
    _, embed = await card_embed(world)
    assert embed.description is not None
    assert "sent back to building by carol: also, the README is stale" in embed.description
    assert "↩️ **carol**" in field(embed, "Conversation")


async def test_a_cross_then_a_reply_makes_the_reply_its_reason(world: World) -> None:
    request = await submitted(world)
    carol, dave = member(world, "carol"), member(world, "dave")
    await carol.react(request, "❌")
    assert (await world.bot.tasks.card(GUILD_ID, "core")).task.state is TaskState.BUILDING
    await dave.send(world.reviews, "agreed", reply_to=request)  # not the one who sent it back
    await carol.send(world.reviews, "The migration drops a column", reply_to=request)
    await carol.send(world.reviews, "and one more thing", reply_to=request)  # a reason is one

    card = await world.bot.tasks.card(GUILD_ID, "core")
    assert card.timeline[-1].reason == "The migration drops a column"
    rows = await comments(world)
    assert [(c.author, c.kind) for c in rows] == [
        ("dave", CommentKind.REPLY),
        ("carol", CommentKind.REASON),
        ("carol", CommentKind.REPLY),
    ]
    assert rows[1].stage_event_id is not None
    _, embed = await card_embed(world)
    assert embed.description is not None
    assert "sent back to building by carol: The migration drops a column" in embed.description


async def test_the_card_shows_notes_and_replies_in_order_the_newest_at_the_bottom(
    world: World,
) -> None:
    await world.bob.send(world.handoffs, "handoff core → building\ntitle: Core\n\nStarted.")
    request = await submitted(world)
    carol, dave = member(world, "carol"), member(world, "dave")
    await dave.send(world.reviews, "Why a new table?", reply_to=request)
    thread = world.env.backend.create_thread(
        world.reviews.id, "core", carol.id, message_id=request.id
    )
    await world.env.settle()
    [in_thread] = [t for t in world.reviews.threads if t.id == thread.id]
    await world.bob.send(in_thread, "Because the old one is shared")  # a message in its thread
    await carol.react(request, "❌")
    await carol.send(in_thread, "Share it anyway")  # the reason, typed after the ❌
    await world.bob.send(world.handoffs, "handoff core → submitted\n\nShared it.")

    card = await world.bot.tasks.card(GUILD_ID, "core")
    [back] = [s for s in card.timeline if s.trigger == "request_changes"]
    assert back.reason == "Share it anyway"  # said in the request's thread
    _, embed = await card_embed(world)
    lines = field(embed, "Conversation").splitlines()
    assert [line.split(" · ")[0] for line in lines] == [
        "📝 **bob** → building",
        "📝 **bob** → submitted",
        "💬 **dave**",
        "💬 **bob**",
        "↩️ **carol**",
        "📝 **bob** → submitted",
    ]
    assert [line.split(" · ")[-1] for line in lines] == [
        "Started.",
        "Ready: 12/0/0 green.",
        "Why a new table?",
        "Because the old one is shared",
        "Share it anyway",
        "Shared it.",
    ]
    assert all(" · <t:" in line and ":R> · " in line for line in lines)
    # the whole latest note stays on the card
    assert field(embed, "Latest handoff note (of 3)").endswith("\nShared it.")


async def test_a_long_conversation_pages_back_to_its_first_entry(world: World) -> None:
    request = await submitted(world)
    carol = member(world, "carol")
    for i in range(30):
        await carol.send(world.reviews, f"remark {i:02d} " + "word " * 25, reply_to=request)

    shown, embed = await card_embed(world)
    message = world.env.backend.messages[shown.response.channel_id][shown.response.id]

    def labels() -> list[str]:
        return [c["label"] for row in message.components for c in row["components"]]

    def remarks(text: str) -> list[str]:
        return [
            line.split(" · ")[-1].split(" word")[0] for line in text.splitlines() if "💬" in line
        ]

    talk = field(embed, "Conversation")
    assert len(talk) <= 1024 and "◂ Earlier conversation" in talk
    seen = remarks(talk)
    assert seen[-1] == "remark 29" and len(seen) < 30  # the newest at the bottom
    assert labels() == ["◂ Earlier conversation"]
    pages = 1
    while labels():
        await world.bob.click(shown.response, label="◂ Earlier conversation")
        message = world.env.backend.messages[shown.response.channel_id][shown.response.id]
        [page] = message.embeds
        pages += 1
        assert page["title"] == f"💬 core — conversation, page {pages}"
        seen = remarks(page["description"]) + seen
    assert pages >= 3  # past one message, and past one earlier page
    earliest = message.embeds[0]["description"].splitlines()
    assert earliest[0].startswith("📝 **bob** → submitted")  # nothing before the first note
    assert seen == [f"remark {i:02d}" for i in range(30)]  # each once, in order


async def test_bots_and_replies_to_other_messages_are_not_kept(world: World) -> None:
    request = await submitted(world)
    carol, robot = member(world, "carol"), member(world, "robot", bot=True)
    chatter = await carol.send(world.reviews, "standup in 5")
    await world.bob.send(world.reviews, "coming", reply_to=chatter)  # a reply to something else
    await robot.send(world.reviews, "CI: green", reply_to=request)  # a bot
    general = await carol.send(world.general, "lunch?")
    await world.bob.send(world.general, "yes", reply_to=general)  # another channel
    await world.bob.send(world.reviews, "not a reply")  # no reference
    assert await comments(world) == []
    await carol.send(world.reviews, "LGTM", reply_to=request)
    assert [c.text for c in await comments(world)] == ["LGTM"]
    # the bot's own request edits and its review message are not entries either
    _, embed = await card_embed(world)
    assert [line.split(" · ")[-1] for line in field(embed, "Conversation").splitlines()] == [
        "Ready: 12/0/0 green.",
        "LGTM",
    ]


async def test_the_same_message_twice_is_one_entry_and_edits_and_deletions_follow(
    world: World,
) -> None:
    request = await submitted(world)
    carol = member(world, "carol")
    sent = await carol.send(world.reviews, "nit: naming", reply_to=request)
    # Bot.close() unloads extensions, so each test's bot holds a freshly imported class.
    cog = cast(ConversationCog, world.bot.get_cog("ConversationCog"))
    channel = world.bot.get_channel(world.reviews.id)
    assert isinstance(channel, discord.TextChannel)
    again = await channel.fetch_message(sent.id)
    result = await cog.keep(again)
    assert result is not None and result.duplicate and not result.kept
    async with world.bot.database.read() as session:
        assert await session.scalar(select(func.count()).select_from(TaskComment)) == 1

    await carol.edit(sent, "nit: naming (the helper's)")
    await world.env.settle()
    assert [c.text for c in await comments(world)] == ["nit: naming (the helper's)"]
    await carol.delete(sent)
    await world.env.settle()
    assert await comments(world) == []
