"""Benchmarks of the running bot, driven through simcord (discord.py's real gateway parsers and
HTTP client, an in-process Discord).

    .venv/bin/python -m bench.bench_bot [--calls 1000] [--handoffs 2000] [--reviews 200]
        [--before SHA]

Every figure is of the one process that holds the bot and simcord: simcord's own work (its
gateway, its HTTP routes, the messages and reactions it makes) is in the rates, and its imports
are in the resident memory (printed apart). Exit status 1 when a target is missed:

1. interaction first response: from discord.py parsing INTERACTION_CREATE to the bot's first
   response call (message or defer) returning, over N ``/release status`` and N
   ``/release add`` calls, one after another;
2. handoffs through the listener: messages arriving through the gateway, each stored raw,
   applied and acknowledged with a reaction (and a review request posted when submitted);
3. review reactions through the review cog: ✅ on review requests, counted, the request
   messages edited, tasks becoming reviewed;
4. resident memory of the process with the bot started, all cogs loaded, idle;
5. the event loop's longest stall while the reactions and the handoffs flow: every callback
   the loop runs is timed (a bench-only patch of ``asyncio.Handle._run``), so the figure is the
   longest the loop ran one piece of code without yielding, the bot's or simcord's.

``--before SHA`` runs the same benchmark of that commit (a detached worktree, this virtualenv)
before and after this tree's, to compare in one run on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from sqlalchemy import func, select

from bench.stalls import LoopStalls, pct
from bench.targets import bot_verdicts, verdict
from bot.client import ConductorBot, create_bot
from bot.sample import GUILD_ID, sample_settings
from bot.settings import Settings
from conductor.states import TaskState
from store.db import Database
from store.models import HandoffMessage

if TYPE_CHECKING:
    import simcord


#: the target for a slash command's first response (docs/PERFORMANCE.md); the rest: bench.targets
FIRST_RESPONSE_P99_MS = 50.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


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


async def bench_reactions(w: World, reviews: int, stalls: LoopStalls | None = None) -> float:
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
    if stalls is not None:
        stalls.on = True
    start = time.perf_counter()
    # All of a reviewer's ✅ arrive through the gateway before the bot is let run.
    for reviewer in w.reviewers:
        for message in requests:
            w.env.backend.set_reaction(message.channel.id, message.id, "✅", reviewer.id, True)
            reactions += 1
        await w.env.settle()
    took = time.perf_counter() - start
    if stalls is not None:
        stalls.on = False
    counted = max(counted_at) - start
    reviewed = len(await w.bot.tasks.find(GUILD_ID, TaskState.REVIEWED))
    assert reviewed == reviews and len(counted_at) == reactions, (reviewed, len(counted_at))
    print(
        f"reactions: {reactions} ✅ counted in {counted:.2f} s = {reactions / counted:.0f}/s; "
        f"with every request message edited and the board updated: {took:.2f} s = "
        f"{reactions / took:.0f}/s ({reviewed} tasks reviewed)"
    )
    return reactions / took


async def bench_interactions(w: World, calls: int, pool_size: int) -> float:
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
    return max(pct(status_ms, 99), pct(add_ms, 99))


async def bench_handoffs(
    w: World, handoffs: int, wave: int = 200, stalls: LoopStalls | None = None
) -> float:
    """Waves of ``wave`` messages arriving through the gateway before the bot is let run: the
    messages of a wave are all in the gateway's buffer when the bot next runs, as after a burst
    of agents' posts, and the next wave is sent once everything the last one caused is done."""
    before = await stored(w.bot)
    channel = w.channels["handoffs"]
    hook = w.guild.create_webhook(channel, "agents")
    if stalls is not None:
        stalls.on = True
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
    if stalls is not None:
        stalls.on = False
    count = await stored(w.bot) - before
    assert count == handoffs, (count, handoffs)
    acked = sum(
        1
        for m in channel.history()
        if m.webhook_id and any(str(r.emoji) == "✅" for r in m.reactions)
    )
    rate = handoffs / took
    print(
        f"handoffs through the listener: {handoffs} in {took:.2f} s = {rate:.0f}/s "
        f"(waves of {wave}; {acked} acknowledged ✅; review requests posted for the submitted)"
    )
    start = time.perf_counter()
    for i in range(100):
        await hook.send(f"handoff solo-{i} → building\ntitle: Solo {i}")
    took = time.perf_counter() - start
    print(f"handoffs one at a time, each awaited to its ✅: {100 / took:.0f}/s")
    return rate


async def main(calls: int, handoffs: int, reviews: int) -> bool:
    before_simcord = rss_mb()
    import simcord  # noqa: PLC0415 - measured: simcord's own imports are in every RSS below

    simcord_mb = rss_mb() - before_simcord
    stalls = LoopStalls(asyncio.current_task())
    with tempfile.TemporaryDirectory() as tmp:
        bot, _ = await build(Path(tmp))
        gc.collect()
        before_start = rss_mb()
        async with simcord.run(bot) as env:
            world = await build_world(env, bot)
            gc.collect()
            idle = rss_mb()
            print(
                f"RSS before the bot started: {before_start:.1f} MB (simcord's imports in it: "
                f"{simcord_mb:.1f} MB)"
            )
            print(f"RSS idle, bot started with {len(bot.cogs)} cogs, guild loaded: {idle:.1f} MB")
            reactions = await bench_reactions(world, reviews, stalls)
            stall = stalls.report("reactions")
            p99 = await bench_interactions(world, calls, min(reviews, 50))
            rate = await bench_handoffs(world, handoffs, stalls=stalls)
            stall = max(stall, stalls.report("handoffs"))
            gc.collect()
            print(f"RSS after the run: {rss_mb():.1f} MB")
        await bot.close()
    met = [
        *bot_verdicts(idle_mb=idle, handoffs=rate, reactions=reactions, stall_ms=stall),
        verdict(
            f"first response p99 under {FIRST_RESPONSE_P99_MS:.0f} ms ({p99:.1f})",
            p99 < FIRST_RESPONSE_P99_MS,
        ),
    ]
    return all(met)


def run_before(sha: str, argv: list[str]) -> None:
    """This benchmark as it was at ``sha``, in a detached worktree, with this virtualenv."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        git = ["git", "-C", str(root)]
        subprocess.run([*git, "worktree", "add", "--quiet", "--detach", str(tree), sha], check=True)  # noqa: S603
        try:
            print(f"--- before: {sha}", flush=True)
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run(  # noqa: S603 - this interpreter, the tree's own benchmark
                [sys.executable, "-m", "bench.bench_bot", *argv], cwd=tree, env=env, check=False
            )
            print("--- end of before", flush=True)
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)  # noqa: S603


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--handoffs", type=int, default=2000)
    parser.add_argument("--reviews", type=int, default=200)
    parser.add_argument("--before", metavar="SHA", help="also run this commit's benchmark, before")
    args = parser.parse_args()
    sizes = ["--calls", str(args.calls), "--handoffs", str(args.handoffs)]
    sizes += ["--reviews", str(args.reviews)]
    print(f"load average at the start: {os.getloadavg()[0]:.2f}", flush=True)
    if args.before:
        run_before(args.before, sizes)
    ok = asyncio.run(main(args.calls, args.handoffs, args.reviews))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if not ok:
        raise SystemExit(1)
