"""Benchmarks of the running bot, driven through simcord (discord.py's real gateway parsers and
HTTP client, an in-process Discord).

    .venv/bin/python -m bench.bench_bot [--calls 1000] [--handoffs 2000] [--reviews 200]

1. interaction first response: from discord.py parsing INTERACTION_CREATE to the bot's first
   response call (message or defer) returning, over N ``/release status`` and N
   ``/release add`` calls, one after another;
2. handoffs through the listener: messages arriving through the gateway, each stored raw,
   applied and acknowledged with a reaction (and a review request posted when submitted);
3. review reactions through the review cog: ✅ on review requests, counted, the request
   messages edited, tasks becoming reviewed;
4. resident memory of the process with the bot started, all cogs loaded, idle.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import simcord
from sqlalchemy import func, select

from bot.client import ConductorBot, create_bot
from bot.sample import GUILD_ID, sample_settings
from bot.settings import Settings
from conductor.states import TaskState
from store.db import Database
from store.models import HandoffMessage


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class FirstResponse:
    """Times each interaction from its parse to its first response (bench-only patches)."""

    def __init__(self, bot: ConductorBot) -> None:
        self.started: dict[int, float] = {}
        self.took: list[float] = []
        parsers: dict[str, Callable[[Any], None]] = bot._connection.parsers
        parse = parsers["INTERACTION_CREATE"]

        def timed_parse(data: Any) -> None:
            self.started[int(data["id"])] = time.perf_counter()
            parse(data)

        parsers["INTERACTION_CREATE"] = timed_parse
        for name in ("send_message", "defer"):
            self._wrap(name)

    def _wrap(self, name: str) -> None:
        original = getattr(discord.InteractionResponse, name)
        took, started = self.took, self.started

        async def timed(response: Any, *args: Any, **kwargs: Any) -> Any:
            result = await original(response, *args, **kwargs)
            begun = started.pop(response._parent.id, None)
            if begun is not None:
                took.append((time.perf_counter() - begun) * 1000)
            return result

        setattr(discord.InteractionResponse, name, timed)

    def take(self) -> list[float]:
        out, self.took[:] = list(self.took), []
        return out


async def build(tmp: Path) -> tuple[ConductorBot, Settings]:
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    database = Database(url)
    await database.create_all()
    settings = sample_settings(url)
    return create_bot(settings, database=database), settings


def submit_text(slug: str) -> str:
    return (
        f"handoff {slug} → submitted\ntitle: Task {slug}\nbranch: feat/{slug}\nkind: feature\n"
        "model: claude-opus-4-8\ntokens: 1,608,969\ncost: $1.82\n\nAll green."
    )


async def stored(bot: ConductorBot) -> int:
    async with bot.database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(HandoffMessage)) or 0)


@dataclass
class World:
    env: simcord.Env
    bot: ConductorBot
    guild: Any
    general: Any
    channels: dict[str, Any]
    olga: Any
    agent: Any
    reviewers: list[Any]


async def build_world(env: simcord.Env, bot: ConductorBot) -> World:
    guild = env.create_guild("Train", id=GUILD_ID)
    operators = guild.create_role("Operators")
    general = guild.create_text_channel("general")
    channels = {
        n: guild.create_text_channel(n)
        for n in ("handoffs", "reviews", "release-notes", "deployments")
    }
    olga = guild.add_member(env.create_user("olga"), roles=[operators])
    agent = guild.add_member(env.create_user("agent", bot=True))
    reviewers = [guild.add_member(env.create_user(f"rev{i}")) for i in range(2)]
    await env.settle()
    return World(env, bot, guild, general, channels, olga, agent, reviewers)


async def bench_reactions(w: World, reviews: int) -> None:
    """Reviews first: they also make the reviewed tasks that ``/release add`` needs."""
    for i in range(reviews):
        await w.agent.send(w.channels["handoffs"], submit_text(f"rv-{i}"))
    me = w.bot.user.id if w.bot.user else 0
    requests = [m for m in w.channels["reviews"].history() if m.author.id == me]
    assert len(requests) == reviews, len(requests)
    cog: Any = w.bot.get_cog("ReviewsCog")
    counted_at: list[float] = []
    react = cog.react

    async def timed_react(*args: Any) -> Any:
        result = await react(*args)
        counted_at.append(time.perf_counter())
        return result

    cog.react = timed_react
    reactions = 0
    start = time.perf_counter()
    # All of a reviewer's ✅ arrive through the gateway before the bot is let run.
    for reviewer in w.reviewers:
        for message in requests:
            w.env.backend.set_reaction(message.channel.id, message.id, "✅", reviewer.id, True)
            reactions += 1
        await w.env.settle()
    took = time.perf_counter() - start
    counted = max(counted_at) - start
    reviewed = len(await w.bot.tasks.find(GUILD_ID, TaskState.REVIEWED))
    assert reviewed == reviews and len(counted_at) == reactions, (reviewed, len(counted_at))
    print(
        f"reactions: {reactions} ✅ counted in {counted:.2f} s = {reactions / counted:.0f}/s; "
        f"with every request message edited and the board updated: {took:.2f} s = "
        f"{reactions / took:.0f}/s ({reviewed} tasks reviewed)"
    )


async def bench_interactions(w: World, calls: int, pool_size: int) -> None:
    timer = FirstResponse(w.bot)
    wall: list[float] = []
    for _ in range(calls):
        t = time.perf_counter()
        await w.olga.slash(w.general, "release status")
        wall.append((time.perf_counter() - t) * 1000)
    status_ms = timer.take()
    await w.olga.slash(w.general, "release open", name="bench")
    timer.take()
    pool = [f"rv-{i}" for i in range(pool_size)]
    add_ms: list[float] = []
    while len(add_ms) < calls:  # add a pool of reviewed tasks, remove them, again
        batch = pool[: calls - len(add_ms)]
        for slug in batch:
            await w.olga.slash(w.general, "release add", task=slug)
        add_ms += timer.take()
        for slug in batch:
            await w.olga.slash(w.general, "release remove", task=slug)
        timer.take()
    for label, values in (("/release status", status_ms), ("/release add", add_ms)):
        print(
            f"{label}: {len(values)} calls, first response p50 {pct(values, 50):.1f} ms, "
            f"p99 {pct(values, 99):.1f} ms, max {max(values):.1f} ms"
        )
    print(f"(/release status wall time per call through simcord: p50 {pct(wall, 50):.1f} ms)")


async def bench_handoffs(w: World, handoffs: int, wave: int = 200) -> None:
    """Waves of ``wave`` messages arriving through the gateway before the bot is let run."""
    before = await stored(w.bot)
    channel = w.channels["handoffs"]
    hook = w.guild.create_webhook(channel, "agents")
    start = time.perf_counter()
    sent = 0
    while sent < handoffs:
        for i in range(sent, min(sent + wave, handoffs)):
            step = ("designed", "building", "submitted")[i % 3]
            text = f"handoff hf-{i // 3} → {step}\ntitle: Handoff {i // 3}\nmodel: opus"
            w.env.backend.create_message(
                channel.id,
                hook._webhook.webhook_user_id,
                text,
                webhook_id=hook.id,
                author_name="claude",
            )
        sent = min(sent + wave, handoffs)
        await w.env.settle()
    took = time.perf_counter() - start
    count = await stored(w.bot) - before
    assert count == handoffs, (count, handoffs)
    acked = sum(
        1
        for m in channel.history()
        if m.webhook_id and any(str(r.emoji) == "✅" for r in m.reactions)
    )
    print(
        f"handoffs through the listener: {handoffs} in {took:.2f} s = {handoffs / took:.0f}/s "
        f"(waves of {wave}; {acked} acknowledged ✅; review requests posted for the submitted)"
    )
    start = time.perf_counter()
    for i in range(100):
        await hook.send(f"handoff solo-{i} → building\ntitle: Solo {i}")
    took = time.perf_counter() - start
    print(f"handoffs one at a time, each awaited to its ✅: {100 / took:.0f}/s")


async def main(calls: int, handoffs: int, reviews: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bot, _ = await build(Path(tmp))
        before_start = rss_mb()
        async with simcord.run(bot) as env:
            world = await build_world(env, bot)
            gc.collect()
            print(f"RSS before the bot started: {before_start:.1f} MB")
            print(
                f"RSS idle, bot started with {len(bot.cogs)} cogs, guild loaded: {rss_mb():.1f} MB"
            )
            await bench_reactions(world, reviews)
            await bench_interactions(world, calls, min(reviews, 50))
            await bench_handoffs(world, handoffs)
            gc.collect()
            print(f"RSS after the run: {rss_mb():.1f} MB")
        await bot.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--handoffs", type=int, default=2000)
    parser.add_argument("--reviews", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.handoffs, args.reviews))
