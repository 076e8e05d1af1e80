"""Benchmarks of the domain on a real SQLite file.

    .venv/bin/python -m bench.bench_service [--handoffs 5000] [--members 500]

1. handoffs/s sustained through Handoffs.apply (raw store + parse + apply),
2. shipping a release of N members (state flip + one stage event per member), side by side
   with the members moved one at a time through the machine (the way before step 5), target
   under 100 ms,
3. for scale, raw sqlite3 single-row commits/s on the same disk with the same pragmas.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

from sqlalchemy import insert

from conductor.bootstrap import bootstrap
from conductor.machines import TaskFlow
from conductor.states import ReleaseState, TaskState
from conductor.views import Actor, IncomingMessage
from store.db import Database
from store.models import Release, Task
from store.types import utcnow

GUILD = 1
STATES = ("designed", "building", "submitted")


def raw_sqlite_commits(path: Path, n: int = 5000) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def handoff_messages(n: int) -> list[IncomingMessage]:
    """A realistic stream: each task gets designed → building → submitted, plus a progress note."""
    messages = []
    for i in range(n):
        task, step = divmod(i, 4)
        state = STATES[min(step, 2)] if step < 3 else "submitted"
        text = (
            f"**handoff** `task-{task}` → {state}\n"
            f"title: Task number {task}\nbranch: feat/task-{task}\nkind: feature\n"
            f"model: claude-opus-4-8\ntokens: 1,608,969\ncost: $1.82\n\n"
            f"Step {step} of task {task}: all green."
        )
        messages.append(IncomingMessage(GUILD, 10, 1_000_000 + i, 77, "machoke", "bot", text))
    return messages


async def bench_handoffs(
    url: str, n: int, *, queued: bool, rate: float | None = None
) -> dict[str, float]:
    """How the messages arrive:
    - ``queued=False``: each is applied and awaited before the next (one at a time);
    - ``queued=True``: through the group-commit queue, all at once (a burst), or
      ``rate`` per second, evenly spaced (a steady stream the bot must keep up with)."""
    db = Database(url)
    await db.create_all()
    domain = bootstrap(database=db)
    messages = handoff_messages(n + 50)
    for message in messages[:50]:  # warm the code paths up (not counted)
        await domain.handoffs.apply(message)
    counted = messages[50:]
    latencies: list[float] = []

    async def one(message: IncomingMessage) -> None:
        t0 = time.perf_counter()
        result = await (
            domain.handoffs.submit(message) if queued else domain.handoffs.apply(message)
        )
        latencies.append(time.perf_counter() - t0)
        assert result.error is None and not result.duplicate, result

    start = time.perf_counter()
    if queued and rate:
        pending = []
        for i, message in enumerate(counted):
            due = start + i / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            pending.append(asyncio.create_task(one(message)))
        await asyncio.gather(*pending)
    elif queued:
        await asyncio.gather(*(one(m) for m in counted))
    else:
        for message in counted:
            await one(message)
    elapsed = time.perf_counter() - start
    await db.dispose()
    latencies.sort()
    return {
        "count": len(counted),
        "seconds": elapsed,
        "per_second": len(counted) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


SHIP_TARGET_MS = 100


async def _one_by_one(tasks: Any, trigger: str, move: Any, session: Any) -> None:
    """The members moved as before step 5: each attached to the machine and fired."""
    for task in tasks:
        await TaskFlow(task, session).fire(trigger, move)


async def bench_ship(
    url: str, members: int, repeats: int = 5, *, per_row: bool = False
) -> list[float]:
    db = Database(url)
    await db.create_all()
    domain = bootstrap(database=db)
    timings = []
    for r in range(repeats):
        now = utcnow()
        async with db.write() as session:
            release = Release(
                guild_id=GUILD, slug=f"2026-01-01-bench-{r}", name="bench", state=ReleaseState.ASSEMBLED,
                opened_by="bench", opened_at=now,
            )  # fmt: skip
            session.add(release)
            await session.flush()
            await session.execute(
                insert(Task),
                [
                    {
                        "guild_id": GUILD,
                        "slug": f"r{r}-m{i}",
                        "title": f"member {i}",
                        "kind": "feature",
                        "branch": f"feat/m{i}",
                        "state": TaskState.ASSEMBLED,
                        "release_id": release.id,
                        "release_position": i,
                        "author_name": "agent",
                        "extra": {},
                        "created_at": now,
                        "updated_at": now,
                        "state_since": now,
                    }
                    for i in range(members)
                ],
            )
        t0 = time.perf_counter()
        if per_row:
            with patch.object(TaskFlow, "move_all", _one_by_one):
                shipped = await domain.releases.ship(GUILD, Actor("olga", 1))
        else:
            shipped = await domain.releases.ship(GUILD, Actor("olga", 1))
        timings.append((time.perf_counter() - t0) * 1000)
        assert len(shipped.members) == members and shipped.state is ReleaseState.SHIPPED
    await db.dispose()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--handoffs", type=int, default=5000)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="steady arrival rate, per second"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        raw = raw_sqlite_commits(base / "raw.db")
        single = asyncio.run(
            bench_handoffs(f"sqlite+aiosqlite:///{base / 'h1.db'}", args.handoffs, queued=False)
        )
        burst = asyncio.run(
            bench_handoffs(f"sqlite+aiosqlite:///{base / 'h2.db'}", args.handoffs, queued=True)
        )
        steady = asyncio.run(
            bench_handoffs(
                f"sqlite+aiosqlite:///{base / 'h3.db'}", args.handoffs, queued=True, rate=args.rate
            )
        )
        ship, per_row = [], []
        for round_ in range(3):  # alternate, so a noisy moment costs both alike
            ship += asyncio.run(
                bench_ship(f"sqlite+aiosqlite:///{base / f's{round_}.db'}", args.members, 3)
            )
            per_row += asyncio.run(
                bench_ship(
                    f"sqlite+aiosqlite:///{base / f'p{round_}.db'}", args.members, 3, per_row=True
                )
            )
    print(f"raw sqlite3 single-row commits: {raw:,.0f}/s")
    runs = (
        ("one at a time", single),
        ("burst, group commit", burst),
        (f"steady {args.rate:,.0f}/s arrivals, group commit", steady),
    )
    for label, h in runs:
        print(
            f"handoffs, {label}: {h['count']:,} in {h['seconds']:.2f} s = {h['per_second']:,.0f}/s "
            f"(latency p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms)"
        )
    print(f"group commit vs one at a time: {burst['per_second'] / single['per_second']:.1f}x")
    for label, times in (("", ship), (", members one by one through the machine", per_row)):
        print(
            f"ship of {args.members} members{label}: median {statistics.median(times):.0f} ms, "
            f"min {min(times):.0f} ms, max {max(times):.0f} ms over {len(times)} runs"
        )
    ratio = statistics.median(per_row) / statistics.median(ship)
    verdict = "met" if statistics.median(ship) < SHIP_TARGET_MS else "MISSED"
    print(f"one move for all members vs one by one: {ratio:.1f}x faster")
    print(f"target: ship of {args.members} under {SHIP_TARGET_MS} ms: {verdict}")


if __name__ == "__main__":
    main()
