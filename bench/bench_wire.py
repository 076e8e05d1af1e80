"""The bot's own costs on the wire: the bot as ``conductor run`` in a process of its own,
Discord (the e2e stand-in: real HTTP and a real gateway on 127.0.0.1, every request body
checked against Discord's OpenAPI spec) in this one, as in production, where Discord's work is
not on the bot's CPU.

    .venv/bin/python -m bench.bench_wire [--handoffs 2000] [--reviews 200] [--wave 200]

``bench_bot`` measures the bot and simcord in one process: there simcord's share of a handoff
(its gateway, its HTTP routes, the messages and reactions it keeps) is larger than the bot's.
Here the figures are the bot process's alone:

1. resident memory of the bot's process, started, every cog loaded, idle;
2. reactions: ``--reviews`` review requests, then both reviewers' ✅ on every one at once
   (a burst through the gateway); done when every request message reads "Reviewed";
3. handoffs through the listener: waves of ``--wave`` webhook messages at once; a wave is
   done when every message has the bot's ✅ and a review request is posted for each
   submitted task; the next wave then;
4. the bot's event loop while they flow (``bench.loopwatch``: every callback timed).

Also the bot process's CPU time (user and system, its database thread in it) per handoff and
per reaction. The stand-in's rate limits are off: Discord paces reactions (about four a
second per channel) and message posts, so these rates are what the bot can do, not what one
channel of Discord lets through. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stalls import STALL_MS
from bench.targets import bot_verdicts
from e2e.driver import ROOT, BotProcess, Driver
from e2e.standin import Json, StandIn

GUILD_ID = 616_161
#: how often a wait looks at the stand-in
POLL_S = 0.002
WAIT_S = 300.0
APPROVALS = 2


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def proc_cpu_s(pid: int) -> float:
    """User and system time of the process, every thread of it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.standin = StandIn("bench." + secrets.token_urlsafe(24))
        self.standin.limits = False
        self.d = Driver(self.standin)
        self.stalls_file = root / "stalls.json"
        self.bot: BotProcess | None = None
        self._requests: list[Json] = []
        self._scanned = 0

    def start(self) -> None:
        s, d = self.standin, self.d
        s.start()
        s.call(lambda: s.create_guild(GUILD_ID, "Wire"))
        self.channels = {
            name: d.channel(name)
            for name in ("general", "handoffs", "reviews", "release-notes", "deployments")
        }
        operators = d.role("Operators")
        d.user("olga", roles=(operators,))
        self.agent = d.user("agent", bot=True)
        self.reviewers = [d.user(f"rev{i}") for i in range(APPROVALS)]
        self.hook = d.webhook(self.channels["handoffs"], "agents")
        config = self.root / "conductor.toml"
        config.write_text(
            f"guild_id = {GUILD_ID}\n"
            'handoff_channels = ["handoffs"]\n'
            'reviews_channel = "reviews"\n'
            'notes_channel = "release-notes"\n'
            'deployments_channel = "deployments"\n'
            'operator_role = "Operators"\n'
            f"required_approvals = {APPROVALS}\n"
        )
        self.db = self.root / "conductor.db"
        env = {
            "CONDUCTOR_DISCORD_TOKEN": s.token,
            "CONDUCTOR_DISCORD_API_URL": s.url,
            "CONDUCTOR_DATABASE_URL": f"sqlite+aiosqlite:///{self.db}",
            "CONDUCTOR_CONFIG": str(config),
            "CONDUCTOR_WEB_ENABLED": "false",
        }
        # Migrated first, as for any restart: ``conductor run`` imports alembic only to
        # migrate a database behind the head, and the idle memory is a restart's.
        outside = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
        subprocess.run(
            [sys.executable, "-m", "cli", "db", "upgrade"],
            env={**outside, **env, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
        )
        env["BENCH_STALLS_FILE"] = str(self.stalls_file)
        if os.environ.get("BENCH_PROFILE"):
            env["BENCH_PROFILE"] = os.environ["BENCH_PROFILE"]
        self.bot = BotProcess(self.root, env, module="bench.loopwatch")
        self.bot.start()
        self.bot.wait_ready()
        self.mark()  # the watch starts

    def stop(self) -> None:
        if self.bot is not None:
            self.bot.stop()
        self.standin.stop()

    @property
    def pid(self) -> int:
        assert self.bot is not None and self.bot.proc is not None
        return self.bot.proc.pid

    def mark(self) -> dict[str, Any]:
        """The bot loop's figures since the last mark (``bench.loopwatch``)."""
        seen = json.loads(self.stalls_file.read_text())["n"] if self.stalls_file.exists() else 0
        os.kill(self.pid, signal.SIGUSR1)
        found: dict[str, Any] = self.until(
            lambda: self._stalls_after(seen), "the bot's loop figures", poll=0.01, direct=True
        )
        return found

    def _stalls_after(self, seen: int) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = json.loads(self.stalls_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return found if found["n"] > seen else None

    def until(
        self,
        check: Callable[[], Any],
        what: str,
        *,
        poll: float = POLL_S,
        direct: bool = False,
    ) -> Any:
        """``check()`` (on the stand-in's loop unless ``direct``) until it is truthy."""
        deadline = time.monotonic() + WAIT_S
        while True:
            found = check() if direct else self.standin.call(check)
            if found:
                return found
            assert self.bot is not None and self.bot.proc is not None
            if self.bot.proc.poll() is not None:
                raise AssertionError(f"the bot exited:\n{self.bot.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} in {WAIT_S:.0f} s")
            time.sleep(poll)

    # ------------------------------------------------------------------ what the bot did

    def requests(self) -> list[Json]:
        """The bot's messages in the reviews channel (the review requests), read on from where
        the last call stopped: the waits poll every few milliseconds on the stand-in's loop,
        and a scan of the whole channel each time would slow the stand-in's answers as the
        channel grows (messages are not deleted here)."""
        s = self.standin
        channel = s.messages.get(self.channels["reviews"], [])
        self._requests.extend(
            m for m in channel[self._scanned :] if int(m["author"]["id"]) == s.bot_id
        )
        self._scanned = len(channel)
        return self._requests

    def acked(self, messages: list[Json]) -> int:
        s = self.standin
        return sum(
            1 for m in messages if s.bot_id in s.reactions.get(int(m["id"]), {}).get("✅", ())
        )

    def stored(self) -> int:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM handoff_messages").fetchone()[0])


def requests_line(s: StandIn, since: int, count: int, each: str) -> str:
    routes = Counter(f"{c.method} {c.template}" for c in s.calls[since:])
    return f"the bot's requests to Discord, {sum(routes.values()) / count:.2f} a {each}: " + (
        ", ".join(f"{route} {n}" for route, n in routes.most_common())
    )


def submit_text(slug: str) -> str:
    return (
        f"handoff {slug} → submitted\ntitle: Task {slug}\nbranch: feat/{slug}\nkind: feature\n"
        "model: claude-opus-4-8\ntokens: 1,608,969\ncost: $1.82\n\nAll green."
    )


def bench_reactions(b: Bench, reviews: int) -> tuple[float, float, dict[str, Any]]:
    s = b.standin
    handoffs = b.channels["handoffs"]
    s.call(
        lambda: [
            s.new_message(handoffs, s.users[b.agent], submit_text(f"rv-{i}"))
            for i in range(reviews)
        ]
    )
    requests = b.until(
        lambda: (found := b.requests()) and len(found) >= reviews and found, "requests"
    )
    b.until(lambda: b.acked(requests) == len(requests), "requests seeded with ✅")
    calls_before = len(s.calls)
    b.mark()
    cpu, start = proc_cpu_s(b.pid), time.perf_counter()

    def burst() -> None:
        for reviewer in b.reviewers:
            for message in requests:
                s.set_reaction(message, "✅", reviewer, True)

    s.call(burst)
    waiting = list(requests)

    def all_reviewed() -> bool:
        waiting[:] = [m for m in waiting if "**Reviewed**" not in m["content"]]
        return not waiting

    b.until(all_reviewed, "request messages all reading Reviewed")
    took, cpu = time.perf_counter() - start, proc_cpu_s(b.pid) - cpu
    stalls = b.mark()
    count = reviews * len(b.reviewers)
    print(requests_line(s, calls_before, count, "reaction"))
    print(
        f"reactions: {count} ✅ (both reviewers on {reviews} requests, at once) counted, every "
        f"request message edited to Reviewed: {took:.2f} s = {count / took:.0f}/s; the bot's "
        f"CPU {cpu:.2f} s, {cpu / count * 1000:.2f} ms a reaction"
    )
    return count / took, cpu / count, stalls


def bench_handoffs(b: Bench, handoffs: int, wave: int) -> tuple[float, float, dict[str, Any]]:
    s = b.standin
    hook = s.webhooks[b.hook]
    author = {"id": hook["id"], "username": "claude", "discriminator": "0000", "avatar": None}
    author["bot"] = True
    channel = b.channels["handoffs"]
    before_requests, before_stored = len(s.call(b.requests)), b.stored()
    calls_before = len(s.calls)

    def post(texts: list[str]) -> list[Json]:
        return [s.new_message(channel, author, t, webhook_id=b.hook) for t in texts]

    def done(posted: list[Json], want: int) -> bool:
        # the messages still waiting for the bot's ✅, fewer at each look
        posted[:] = [
            m for m in posted if s.bot_id not in s.reactions.get(int(m["id"]), {}).get("✅", ())
        ]
        return not posted and len(b.requests()) >= want

    b.mark()
    cpu, start, here = proc_cpu_s(b.pid), time.perf_counter(), time.process_time()
    sent = submitted = 0
    while sent < handoffs:
        texts = []
        for i in range(sent, min(sent + wave, handoffs)):
            step = ("designed", "building", "submitted")[i % 3]
            submitted += step == "submitted"
            texts.append(f"handoff hf-{i // 3} → {step}\ntitle: Handoff {i // 3}\nmodel: opus")
        sent += len(texts)
        posted = s.call(functools.partial(post, texts))
        want = before_requests + submitted
        b.until(functools.partial(done, posted, want), "a wave acknowledged")
    took, cpu = time.perf_counter() - start, proc_cpu_s(b.pid) - cpu
    here = time.process_time() - here
    stalls = b.mark()
    stored = b.stored() - before_stored
    assert stored == handoffs, (stored, handoffs)
    print(requests_line(s, calls_before, handoffs, "handoff"))
    print(
        f"handoffs through the listener: {handoffs} in {took:.2f} s = {handoffs / took:.0f}/s "
        f"(waves of {wave}, each acknowledged ✅, {submitted} review requests posted); the "
        f"bot's CPU {cpu:.2f} s, {cpu / handoffs * 1000:.2f} ms a handoff (the stand-in's and "
        f"this benchmark's, in this process: {here:.2f} s)"
    )
    return handoffs / took, cpu / handoffs, stalls


def line(stalls: dict[str, Any], label: str) -> str:
    return (
        f"the bot's event loop during the {label}: longest callback {stalls['worst_ms']:.1f} ms "
        f"({stalls['where']}), p99 {stalls['p99_ms']:.2f} ms over {stalls['callbacks']} "
        f"callbacks, {stalls['over']} over {STALL_MS:.0f} ms; {stalls['full_collections']} full "
        f"garbage collections, the longest {stalls['longest_collection_ms']:.1f} ms"
    )


def main(handoffs: int, reviews: int, wave: int) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        b = Bench(Path(tmp))
        try:
            b.start()
            time.sleep(1.0)  # whatever the start left running (the reconcile) done
            idle = proc_rss_mb(b.pid)
            print(f"RSS of the bot's process, started, every cog loaded, idle: {idle:.1f} MB")
            reactions, _, react_stalls = bench_reactions(b, reviews)
            print(line(react_stalls, "reactions"))
            rate, _, handoff_stalls = bench_handoffs(b, handoffs, wave)
            print(line(handoff_stalls, "handoffs"))
            print(f"RSS after the run: {proc_rss_mb(b.pid):.1f} MB")
            failures = b.d.failures()
            assert not failures, "the stand-in refused:\n" + "\n".join(failures)
            assert b.bot is not None
            errors = b.bot.errors()
            assert not errors, "the bot logged errors:\n" + "\n".join(errors[:20])
        finally:
            b.stop()
    stall = max(react_stalls["worst_ms"], handoff_stalls["worst_ms"])
    met = bot_verdicts(idle_mb=idle, handoffs=rate, reactions=reactions, stall_ms=stall)
    return all(met)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--handoffs", type=int, default=2000)
    parser.add_argument("--reviews", type=int, default=200)
    parser.add_argument("--wave", type=int, default=200)
    args = parser.parse_args()
    print(f"load average at the start: {os.getloadavg()[0]:.2f}", flush=True)
    ok = main(args.handoffs, args.reviews, args.wave)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    sys.exit(0 if ok else 1)
