"""Sealed-bid sizing through simcord: the PM and the PO bid with /task size (an ephemeral
select), the developer with a handoff's ``size:`` header; nobody reads a bid before the ship
(the review request, the pinned board, the web board's HTML and JSON, /task show); the notes
reveal all three beside the actual. A member without the roles is refused, and so is a bid
after the task was submitted."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.client import ConductorBot
from bot.sample import GUILD_ID
from conductor.states import BidRole, CommentKind, Size, SizeBasis, TaskState
from store.models import Task, TaskBid, TaskComment
from tests.helpers import World, make_bot, refused, release_by_commands

#: a size written next to a role, or an actual: what a leaked bid would look like
LEAK = re.compile(r"\b(PM|PO|Dev|actual)\s+(S|M|L|XL)\b|≠ forecast|= forecast|📏")

BUILDING = (
    "handoff core → building\ntitle: Core\nbranch: feat/core\nkind: feature\n"
    "size: large\ncost: $12\ntokens: 3,000,000\n\nStarted on the core."
)
SUBMITTING = "handoff core → submitted\nsize: XL\ncost: $30.50\ntokens: 9,000,000\n\nCore is done."


@pytest.fixture
async def simcord_bot(tmp_path: Path) -> AsyncIterator[ConductorBot]:
    async with make_bot(tmp_path, pm_role="PM", po_role="PO", web={"port": 0}) as bot:
        yield bot


@pytest.fixture
def team(world: World) -> dict[str, Any]:
    pm, po = world.guild.create_role("PM"), world.guild.create_role("PO")
    return {
        "alex": world.guild.add_member(world.env.create_user("alex"), roles=[pm]),
        "avi": world.guild.add_member(world.env.create_user("avi"), roles=[po]),
        "both": world.guild.add_member(world.env.create_user("pat"), roles=[pm, po]),
        "carl": world.guild.add_member(world.env.create_user("carl")),
        "dora": world.guild.add_member(world.env.create_user("dora")),
    }


async def bid(member: Any, world: World, size: str, **options: Any) -> str:
    asked = await member.slash(world.general, "task size", slug="core", **options)
    assert asked.ephemeral, asked
    assert "sealed" in asked.response.content.lower(), asked.response.content
    chosen = await member.select(asked.response, [size])
    return str(chosen.response.content)


def embed_text(embed: Any) -> str:
    return json.dumps(embed.to_dict(), ensure_ascii=False)


async def web_board(bot: ConductorBot) -> tuple[str, str]:
    server = bot.board_server
    assert server is not None and server.url is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url) as page:
            assert page.status == 200
            html = await page.text()
        async with session.get(server.url + ".json") as answer:
            assert answer.status == 200
            data = await answer.text()
    return html, data


def assert_sealed(text: str, where: str) -> None:
    leaked = LEAK.search(text)
    assert leaked is None, f"{where} shows a bid: {leaked.group(0)!r} in {text[:2000]}"


async def test_three_roles_bid_sealed_until_the_ship_then_the_notes_reveal_them(
    world: World, team: dict[str, Any]
) -> None:
    bot = world.bot
    await world.bob.send(world.handoffs, BUILDING)  # the developer's bid: L
    said = await bid(team["alex"], world, "M")
    assert said.startswith("🔒 Your PM bid on `core` is **M**: sealed until the task ships")
    said = await bid(team["avi"], world, "S")
    said = await bid(team["avi"], world, "L")  # changed before the submission
    assert "changed from S to **L**" in said and "sized by PM, PO, Dev so far" in said

    await world.bob.send(world.handoffs, SUBMITTING)  # a re-bid: XL, kept, never counted
    async with bot.database.read() as session:
        task = await session.scalar(select(Task).where(Task.slug == "core"))
        assert task is not None
        bids = {
            b.role: (b.size, b.bidder)
            for b in await session.scalars(select(TaskBid).where(TaskBid.task_id == task.id))
        }
        [rebid] = await session.scalars(select(TaskComment).where(TaskComment.task_id == task.id))
    assert bids == {
        BidRole.PM: (Size.M, "alex"),
        BidRole.PO: (Size.L, "avi"),
        BidRole.DEV: (Size.L, "bob"),
    }
    assert rebid.kind is CommentKind.REBID and rebid.text == "re-bid XL (the first bid, L, stands)"

    # bids close at the submission
    late = await team["alex"].slash(world.general, "task size", slug="core")
    refused(world.env, late, "`core` is submitted: bids close at submission (sealed-bid sizing)")

    # sealed: the review request, /task show, the board, the web board
    [request] = [m for m in world.reviews.history() if "`core`" in m.content]
    assert_sealed(request.content + "".join(embed_text(e) for e in request.embeds), "the review")
    shown = await world.olga.slash(world.general, "task show", slug="core")
    [card] = shown.response.embeds
    sizing = {f.name: f.value for f in card.fields}["Sizing"]
    assert sizing.startswith("sized by PM, PO, Dev · sealed until it ships")
    assert "alex (PM), avi (PO), bob (Dev)" in sizing
    assert_sealed(embed_text(card), "/task show")
    for reviewer in (team["carl"], team["dora"]):
        await reviewer.react(request, "✅")
    assert (await bot.tasks.card(GUILD_ID, "core")).task.state is TaskState.REVIEWED
    slug = await release_by_commands(world, tasks=(), until="assembling")
    await world.olga.slash(world.general, "release add", task="core")
    assembled = await world.olga.slash(world.general, "release assemble")
    assert "is assembled." in assembled.response.content
    [board] = world.deployments.pinned_messages()
    assert "`core`" in embed_text(board.embeds[0])  # the member is on the board…
    assert_sealed(board.content + embed_text(board.embeds[0]), "the board")  # …its bids not
    html, data = await web_board(bot)
    assert "core" in html and '"core"' in data
    assert_sealed(html, "the web board")
    assert_sealed(data, "/deployments.json")

    shipped = await world.olga.slash(world.general, "release ship")
    assert "— shipped" in shipped.response.content

    # revealed: $12 + $30.50 = $42.50 is XL on cost (the default basis)
    [thread] = [t for t in world.notes.threads if t.name == slug]
    [notes] = [m.content for m in thread.history() if "Release notes" in m.content]
    assert (
        "**✨ Features** (1)\n• `core` — Core · `feat/core` — “Core is done.”\n"
        "  📏 PM M · PO L · Dev L → actual XL ≠ forecast"
    ) in notes
    async with bot.database.read() as session:
        measured = await session.scalar(select(Task).where(Task.slug == "core"))
    assert measured is not None
    assert (measured.actual_size, measured.actual_basis) == (Size.XL, SizeBasis.COST)
    shown = await world.olga.slash(world.general, "task show", slug="core")
    sizing = {f.name: f.value for f in shown.response.embeds[0].fields}["Sizing"]
    assert sizing.startswith("PM M · PO L · Dev L → actual XL ≠ forecast")
    assert sizing.endswith("_actual measured on cost_")


async def test_only_the_pm_and_the_po_may_bid_and_one_with_both_says_which(
    world: World, team: dict[str, Any]
) -> None:
    await world.bob.send(world.handoffs, BUILDING)

    outsider = await world.bob.slash(world.general, "task size", slug="core")
    refused(world.env, outsider, "Only the PM or the PO can bid on a task's size")
    assert "`PM` or `PO` role" in outsider.response.content
    wrong = await team["alex"].slash(world.general, "task size", slug="core", role="po")
    refused(world.env, wrong, "You can't bid as PO: you don't hold the PO role")
    both = await team["both"].slash(world.general, "task size", slug="core")
    refused(world.env, both, "You hold both the PM and the PO role: say which one")
    said = await bid(team["both"], world, "XL", role="po")
    assert said.startswith("🔒 Your PO bid on `core` is **XL**")
    unknown = await team["alex"].slash(world.general, "task size", slug="nope")
    refused(world.env, unknown, "No task `nope`.")
    async with world.bot.database.read() as session:
        bids = (await session.execute(select(TaskBid.role, TaskBid.bidder))).all()
    assert sorted(bids) == [(BidRole.DEV, "bob"), (BidRole.PO, "pat")]
