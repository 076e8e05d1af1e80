"""How the cost of each operation grows with the data stored, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.bench_growth [--backends sqlite,postgresql] [--quick]
        [--sizes 1000,10000,100000] [--members 10,100,1000,10000] [--plans]

For each backend (PostgreSQL: a throwaway cluster, ``tests.postgres.Cluster``):

1. a guild seeded with N tasks (bulk INSERTs, realistic rows: a tenth of N releases, each
   shipped with 8 members but the newest, assembling; every task's timeline, handoff notes,
   review rounds), then, through the code the cogs call: ``/release status``
   (``Releases.status``), ``/task show`` (``Tasks.card``), ``/task list`` (``Tasks.page``: the
   first page, a page from the middle, a page of one state), the autocomplete of
   ``/task show`` and ``/release add`` (``Tasks.suggest``: nothing typed, a slug's prefix, a
   word found nowhere) and the board over real HTTP on 127.0.0.1 (``/deployments.json``,
   ``/deployments``); every size's database is open at once and each operation is timed on
   each size in turn, round after round, so a noisy moment costs every size alike; then
   handoffs applied one at a time (``Handoffs.apply``) among those N tasks, sizes in turn;
2. the ship flip (``Releases.ship``: the release and its members to shipped, a stage event
   each) of 10 … 10,000 members, the sizes alternated round after round.

Prints p50 and p99 per size and backend, the ratio of the largest size to the smallest, the
queries one call ran at the largest size (its SELECTs: each is a round trip), and
with ``--plans`` the query plans of each operation (EXPLAIN QUERY PLAN / EXPLAIN of the very
statements it ran). Exits with status 1 when an operation of a single task or a page misses
20 ms p99 at the largest size, or when a plan reads a whole table of tasks, releases or
their children.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.settings import WebSettings
from bot.web.app import BoardSource
from bot.web.server import BoardServer
from conductor.bootstrap import Conductor, bootstrap
from conductor.states import (
    HandoffOutcome,
    ReleaseState,
    ReviewStatus,
    RunKind,
    RunStatus,
    SealStatus,
    TaskState,
)
from conductor.views import Actor, IncomingMessage, TaskCursor
from store.copy import _move_sequences
from store.db import Database
from store.models import (
    HandoffMessage,
    Release,
    ReviewApproval,
    ReviewRequest,
    Run,
    StageEvent,
    Task,
    TaskDependency,
)
from store.types import utcnow

if TYPE_CHECKING:
    from tests.postgres import Cluster

GUILD = 1
OTHER_GUILD = 2
CHANNEL = 10
SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
MEMBERS = (10, 100, 1_000, 10_000)
QUICK_MEMBERS = (10, 100, 1_000)
#: members of each seeded release
PER_RELEASE = 8
TARGET_MS = 20.0
#: a figure "flat" when the largest size's p50 is within this of the smallest's
FLAT = 2.0
#: rows per INSERT batch while seeding
CHUNK = 5_000
#: tables whose full scan in a plan fails the run (others are a handful of rows)
BIG_TABLES = (
    "tasks",
    "releases",
    "stage_events",
    "handoff_messages",
    "review_requests",
    "review_approvals",
    "task_dependencies",
    "ship_runs",
)


# -- seeding ------------------------------------------------------------------------------------


def slug_of(i: int) -> str:
    return f"t{i:06d}-{('api', 'ui', 'db', 'ops')[i % 4]}"


@dataclass
class Seeded:
    tasks: int
    releases: int
    #: a shipped task (a full timeline) and an open one, for /task show
    shipped_slug: str
    open_slugs: list[str]
    #: a cursor from the middle of the list, for a deep page
    middle: TaskCursor
    next_message_id: int
    seconds: float = 0.0


async def seed(db: Database, n: int) -> Seeded:  # noqa: PLR0915 - one table after another
    """N tasks of GUILD and a few of another guild, bulk-inserted with the rows the service
    would have written: a tenth of N releases of 8 members, all shipped but the newest, assembling; open tasks spread over designed … reviewed."""
    t0 = time.perf_counter()
    rng = random.Random(n)
    now = utcnow()
    start = now - timedelta(days=365)
    releases = max(2, n // 10)
    in_releases = min(n, (releases - 1) * PER_RELEASE)
    active_members = min(PER_RELEASE, n - in_releases)
    tasks, events, messages, requests, approvals, release_rows = [], [], [], [], [], []
    runs: list[dict[str, Any]] = []
    dependencies: list[dict[str, Any]] = []
    message_id = 10_000_000
    event_id = 0
    request_id = 0

    def at(i: int, step: int) -> Any:
        return start + timedelta(seconds=i * 300 + step * 60)

    open_states = (TaskState.DESIGNED, TaskState.BUILDING, TaskState.SUBMITTED, TaskState.REVIEWED)
    for r in range(releases):
        active = r == releases - 1
        shipped = not active
        release_rows.append(
            {
                "id": r + 1,
                "guild_id": GUILD,
                "slug": f"2025-r{r:05d}",
                "name": f"train {r}",
                "state": ReleaseState.ASSEMBLING if active else ReleaseState.SHIPPED,
                "opened_by": "olga",
                "opened_at": at(r * PER_RELEASE, 0),
                "shipped_at": at(r * PER_RELEASE + PER_RELEASE, 0) if shipped else None,
                "shipped_by": "olga" if shipped else None,
                "version": r + 1 if shipped else None,
                "merge_sha": f"{r:040x}" if shipped else None,
                "rc_merges": {},
                "seal_status": SealStatus.GREEN if shipped else None,
                "seal_summary": "6/6 checks passed" if shipped else None,
                "seal_results": [],
                "row_version": 1,
            }
        )
        if shipped:
            runs.append(
                {
                    "guild_id": GUILD,
                    "release_id": r + 1,
                    "status": RunStatus.DONE,
                    "kind": RunKind.SHIP,
                    "version": r + 1,
                    "started_by": "olga",
                    "started_at": at(r * PER_RELEASE + PER_RELEASE, 0),
                    "finished_at": at(r * PER_RELEASE + PER_RELEASE, 1),
                    "told_at": at(r * PER_RELEASE + PER_RELEASE, 1),
                }
            )
    for i in range(n):
        if i < in_releases:
            release_id, position = i // PER_RELEASE + 1, i % PER_RELEASE
            final = TaskState.SHIPPED
        elif i < in_releases + active_members:
            release_id, position = releases, i - in_releases
            final = TaskState.ASSEMBLED
        else:
            release_id, position = None, None
            final = open_states[rng.randrange(4)]
        path = [TaskState.CREATED, TaskState.DESIGNED, TaskState.BUILDING, TaskState.SUBMITTED]
        path += [TaskState.REVIEWED, TaskState.ASSEMBLED, TaskState.SHIPPED]
        path = path[: path.index(final) + 1]
        changed = at(i, len(path))
        tasks.append(
            {
                "id": i + 1,
                "guild_id": GUILD,
                "slug": slug_of(i),
                "title": f"Task number {i}: {('login', 'search', 'billing', 'export')[i % 4]}",
                "kind": "feature",
                "branch": f"feat/{slug_of(i)}",
                "state": final,
                "release_id": release_id,
                "release_position": position,
                "author_name": "machoke",
                "extra": {"model": "claude-opus-4-8"},
                "created_at": at(i, 0),
                "updated_at": changed,
                "state_since": changed,
            }
        )
        if i % 4 == 3:  # every fourth task needs the one before it
            dependencies.append({"task_id": i + 1, "depends_on": slug_of(i - 1), "position": 0})
        for step, (src, dst) in enumerate(itertools.pairwise(path), start=1):
            handoff = dst in (TaskState.DESIGNED, TaskState.BUILDING, TaskState.SUBMITTED)
            if handoff:
                message_id += 1
                messages.append(
                    {
                        "guild_id": GUILD,
                        "channel_id": CHANNEL,
                        "message_id": message_id,
                        "author_name": "machoke",
                        "author_kind": "bot",
                        "text": f"**handoff** `{slug_of(i)}` → {dst.value}\n\nstep {step}",
                        "received_at": at(i, step),
                        "outcome": HandoffOutcome.APPLIED,
                        "task_id": i + 1,
                        "note": f"step {step}: all green",
                    }
                )
            if dst is TaskState.SUBMITTED:
                request_id += 1
                done = final is not TaskState.SUBMITTED
                requests.append(
                    {
                        "id": request_id,
                        "guild_id": GUILD,
                        "task_id": i + 1,
                        "round": 1,
                        "status": ReviewStatus.APPROVED if done else ReviewStatus.OPEN,
                        "required": 1,
                        "channel_id": CHANNEL,
                        "message_id": 50_000_000 + request_id,
                        "created_at": at(i, step),
                        "closed_at": at(i, step + 1) if done else None,
                    }
                )
                if done:
                    approvals.append(
                        {
                            "request_id": request_id,
                            "user_id": 7,
                            "user_name": "bob",
                            "at": at(i, step + 1),
                        }
                    )
            event_id += 1
            events.append(
                {
                    "id": event_id,
                    "task_id": i + 1,
                    "from_state": src,
                    "to_state": dst,
                    "trigger": "bench",
                    "actor": "machoke",
                    "at": at(i, step),
                    "seconds_in_previous": 60.0,
                    "model": "claude-opus-4-8" if handoff else None,
                    "tokens": 1_000 if handoff else None,
                    "release_id": release_id if dst is TaskState.SHIPPED else None,
                    "handoff_message_id": message_id if handoff else None,
                }
            )
    # a second guild, so the guild filter is never the whole table
    for j in range(20):
        tasks.append(
            {
                "id": n + j + 1,
                "guild_id": OTHER_GUILD,
                "slug": slug_of(j),
                "title": "elsewhere",
                "kind": "feature",
                "branch": None,
                "state": TaskState.BUILDING,
                "release_id": None,
                "release_position": None,
                "author_name": "other",
                "extra": {},
                "created_at": now,
                "updated_at": now,
                "state_since": now,
            }
        )
    async with db.engine.begin() as conn:
        for table, rows in (
            (Release, release_rows),
            (Task, tasks),
            (TaskDependency, dependencies),
            (HandoffMessage, messages),
            (StageEvent, events),
            (ReviewRequest, requests),
            (ReviewApproval, approvals),
            (Run, runs),
        ):
            for k in range(0, len(rows), CHUNK):
                await conn.execute(insert(table), rows[k : k + CHUNK])
        if db.is_postgresql:
            await _move_sequences(conn)
            # as autovacuum would soon; SQLite is left as the bot leaves it (no ANALYZE)
            await conn.exec_driver_sql("ANALYZE")
    middle = tasks[n // 2]
    open_first = in_releases + active_members
    open_slugs = [slug_of(i) for i in range(open_first, n)] or [slug_of(n - 1)]
    return Seeded(
        tasks=n,
        releases=releases,
        shipped_slug=slug_of(max(0, in_releases // 2)),
        open_slugs=open_slugs,
        middle=TaskCursor(middle["updated_at"], middle["id"]),
        next_message_id=message_id + 1,
        seconds=time.perf_counter() - t0,
    )


# -- the operations -----------------------------------------------------------------------------


@dataclass
class Op:
    name: str
    #: a single task or one page: held to TARGET_MS p99 (every operation is held to flat
    #: growth)
    held: bool
    call: Callable[[], Awaitable[Any]]


def operations(domain: Conductor, seeded: Seeded, board_url: str, http: Any) -> list[Op]:
    rng = random.Random(7)

    async def card() -> Any:
        slug = seeded.shipped_slug if rng.random() < 0.5 else rng.choice(seeded.open_slugs)
        return await domain.tasks.card(GUILD, slug)

    async def prefix() -> Any:
        return await domain.tasks.suggest(GUILD, slug_of(rng.randrange(seeded.tasks))[:5])

    async def get(path: str) -> None:
        async with http.get(board_url + path) as response:
            assert response.status == 200, response.status
            await response.read()

    return [
        Op("/release status", True, lambda: domain.releases.status(GUILD)),
        Op("/task show", True, card),
        Op("/task list, first page", True, lambda: domain.tasks.page(GUILD)),
        Op(
            "/task list, a page from the middle",
            True,
            lambda: domain.tasks.page(GUILD, after=seeded.middle),
        ),
        Op(
            "/task list state:reviewed",
            True,
            lambda: domain.tasks.page(GUILD, TaskState.REVIEWED),
        ),
        Op("/task show autocomplete, nothing typed", True, lambda: domain.tasks.suggest(GUILD, "")),
        Op("/task show autocomplete, a slug's prefix", True, prefix),
        Op(
            "/task show autocomplete, found nowhere",
            True,
            lambda: domain.tasks.suggest(GUILD, "zebra"),
        ),
        Op(
            "/release add autocomplete, nothing typed",
            True,
            lambda: domain.tasks.suggest(GUILD, "", TaskState.REVIEWED),
        ),
        Op(
            "/release add autocomplete, typed",
            True,
            lambda: domain.tasks.suggest(GUILD, "t0", TaskState.REVIEWED),
        ),
        Op("/deployments.json", False, lambda: get("/deployments.json")),
        Op("/deployments (the page)", False, lambda: get("/deployments")),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass
class Figures:
    #: operation → size → (p50, p99) in ms
    reads: dict[str, dict[int, tuple[float, float]]] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    #: operation → the statements (SELECT or WITH) one call ran, at the largest size
    queries: dict[str, int] = field(default_factory=dict)
    #: the operation's plans (statement, plan), at the largest size
    plans: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    seeded_s: dict[int, float] = field(default_factory=dict)
    #: members → ship times in ms
    ships: dict[int, list[float]] = field(default_factory=dict)


@contextlib.contextmanager
def capture(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The statements run meanwhile, with their parameters (one execution each)."""
    seen: list[tuple[str, Any]] = []

    def before(*args: Any) -> None:
        # SQLAlchemy's (conn, cursor, statement, parameters, context, executemany)
        _conn, _cursor, statement, params, _context, many = args
        if not many and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, params))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def explain(db: Database, statements: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    out = []
    async with db.engine.connect() as conn:
        for statement, params in statements:
            prefix = "EXPLAIN " if db.is_postgresql else "EXPLAIN QUERY PLAN "
            rows = (await _driver_sql(conn, prefix + statement, params)).all()
            if db.is_postgresql:
                plan = "\n".join(str(row[0]) for row in rows)
            else:
                plan = "\n".join(str(row[-1]) for row in rows)
            out.append((" ".join(statement.split()), plan))
    return out


async def _driver_sql(conn: AsyncConnection, statement: str, params: Any) -> Any:
    return await conn.exec_driver_sql(statement, tuple(params) if params else ())


def scans(plan: str, postgresql: bool) -> list[str]:
    """The big tables a plan reads whole."""
    found = []
    for line in plan.splitlines():
        words = line.replace("(", " ").split()
        for table in BIG_TABLES:
            if (postgresql and "Seq Scan on" in line and f" {table} " in f" {line} ") or (
                not postgresql
                and line.strip().startswith("SCAN")
                and table in words
                and "USING INTEGER PRIMARY KEY" not in line
            ):
                found.append(table)
    return found


@contextlib.asynccontextmanager
async def board(domain: Conductor) -> AsyncIterator[str]:
    source = BoardSource(
        releases=domain.releases,
        evidence=domain.sealer.evidence,
        database=domain.db,
        default_guild=GUILD,
        guild_name=lambda _guild: "bench",
        gateway=lambda: None,
    )
    server = BoardServer(source, WebSettings(host="127.0.0.1", port=0))
    assert await server.start()
    try:
        assert server.url is not None
        yield server.url.removesuffix("/deployments")
    finally:
        await server.stop()


@dataclass
class Guild:
    """One seeded database, its domain and its board, for one size."""

    n: int
    db: Database
    seeded: Seeded
    domain: Conductor
    ops: list[Op] = field(default_factory=list)


async def bench_reads(
    urls: dict[int, str], rounds: int, figures: Figures, *, plans: bool, handoffs: int
) -> None:
    """Every size's database open at once, each operation timed on each size in turn, the
    order of the sizes reversed every other round: a noisy moment costs every size alike."""
    guilds = []
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        for n, url in urls.items():
            db = Database(url)
            stack.push_async_callback(db.dispose)
            await db.create_all()
            seeded = await seed(db, n)
            figures.seeded_s[n] = seeded.seconds
            print(f"  {n:,} tasks seeded in {seeded.seconds:.1f} s", file=sys.stderr, flush=True)
            domain = bootstrap(database=db)
            base = await stack.enter_async_context(board(domain))
            guilds.append(Guild(n, db, seeded, domain, operations(domain, seeded, base, http)))
        largest = max(urls)
        for guild in guilds:
            for op in guild.ops:  # warm up, and the plans of what each ran
                with capture(guild.db) as seen:
                    await op.call()
                if guild.n == largest:
                    figures.queries[op.name] = len(seen)
                if plans and guild.n == largest:
                    figures.plans[op.name] = await explain(guild.db, seen)
        times: dict[tuple[str, int], list[float]] = {}
        for r in range(rounds):
            for i in range(len(guilds[0].ops)):
                for guild in guilds if r % 2 == 0 else reversed(guilds):
                    op = guild.ops[i]
                    t0 = time.perf_counter()
                    await op.call()
                    times.setdefault((op.name, guild.n), []).append(
                        (time.perf_counter() - t0) * 1000
                    )
        for (name, n), values in times.items():
            figures.reads.setdefault(name, {})[n] = (
                statistics.median(values),
                percentile(values, 0.99),
            )
        figures.held.update(op.name for op in guilds[0].ops if op.held)
        # handoffs among N tasks: new tasks and moves of them, one at a time, sizes in turn
        latencies: dict[int, list[float]] = {}
        for i in range(handoffs):
            slug, state = (f"new-{i // 3}", ("designed", "building", "submitted")[i % 3])
            text = (
                f"**handoff** `{slug}` → {state}\ntitle: New {i}\nbranch: feat/new-{i // 3}\n"
                f"kind: feature\nmodel: claude-opus-4-8\ntokens: 1,000\n\nstep {i}"
            )
            for guild in guilds if i % 2 == 0 else reversed(guilds):
                message = IncomingMessage(
                    GUILD, CHANNEL, guild.seeded.next_message_id + i, 77, "machoke", "bot", text
                )
                t0 = time.perf_counter()
                result = await guild.domain.handoffs.apply(message)
                latencies.setdefault(guild.n, []).append((time.perf_counter() - t0) * 1000)
                assert result.error is None, result
        for n, values in latencies.items():
            figures.reads.setdefault("handoff applied (one at a time)", {})[n] = (
                statistics.median(values),
                percentile(values, 0.99),
            )
        # the path before step 11: /task list and the autocomplete read every task
        for guild in guilds:
            before = []
            for _ in range(3 if guild.n >= 50_000 else max(3, rounds // 20)):
                t0 = time.perf_counter()
                await guild.domain.tasks.find(GUILD)
                before.append((time.perf_counter() - t0) * 1000)
            figures.reads.setdefault("(before: every task, `Tasks.find`)", {})[guild.n] = (
                statistics.median(before),
                percentile(before, 0.99),
            )


async def bench_ship(url: str, members: tuple[int, ...], rounds: int, figures: Figures) -> None:
    db = Database(url)
    await db.create_all()
    domain = bootstrap(database=db)
    base = 0
    for r in range(rounds):
        for m in members if r % 2 == 0 else tuple(reversed(members)):
            now = utcnow()
            async with db.write() as session:
                release = Release(
                    guild_id=GUILD, slug=f"2026-ship-{r}-{m}", name="bench",
                    state=ReleaseState.ASSEMBLED, opened_by="bench", opened_at=now,
                )  # fmt: skip
                session.add(release)
                await session.flush()
                rows = [
                    {
                        "guild_id": GUILD,
                        "slug": f"m{base + i}",
                        "title": f"member {i}",
                        "kind": "feature",
                        "branch": f"feat/m{base + i}",
                        "state": TaskState.ASSEMBLED,
                        "release_id": release.id,
                        "release_position": i,
                        "author_name": "agent",
                        "extra": {},
                        "created_at": now,
                        "updated_at": now,
                        "state_since": now,
                    }
                    for i in range(m)
                ]
                for k in range(0, m, CHUNK):
                    await session.execute(insert(Task), rows[k : k + CHUNK])
            base += m
            t0 = time.perf_counter()
            shipped = await domain.releases.ship(GUILD, Actor("olga", 1))
            figures.ships.setdefault(m, []).append((time.perf_counter() - t0) * 1000)
            assert len(shipped.members) == m and shipped.state is ReleaseState.SHIPPED
    await db.dispose()


# -- the backends -------------------------------------------------------------------------------


@contextlib.contextmanager
def databases(
    backend: str, cluster: Cluster | None = None
) -> Iterator[Callable[[], contextlib.AbstractContextManager[str]]]:
    """A maker of fresh, empty databases of ``backend`` (each removed after its block); on
    PostgreSQL in ``cluster``, else in a throwaway cluster of its own."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
            count = iter(range(1_000_000))

            @contextlib.contextmanager
            def sqlite_file() -> Iterator[str]:
                path = Path(tmp) / f"g{next(count)}.db"
                yield f"sqlite+aiosqlite:///{path}"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

            yield sqlite_file
        return
    if cluster is not None:
        yield cluster.database
        return
    from tests.postgres import Cluster  # noqa: PLC0415 - only a run on PostgreSQL needs it

    own = Cluster()
    own.start()
    try:
        yield own.database
    finally:
        own.stop()


@dataclass
class GrowthRun:
    backends: tuple[str, ...]
    sizes: tuple[int, ...]
    members: tuple[int, ...]
    rounds: int
    ship_rounds: int
    handoffs: int
    plans: bool
    results: dict[str, Figures] = field(default_factory=dict)


def measure(run: GrowthRun, cluster: Cluster | None = None) -> None:
    for backend in run.backends:
        figures = run.results.setdefault(backend, Figures())
        with databases(backend, cluster) as fresh, contextlib.ExitStack() as stack:
            urls = {n: stack.enter_context(fresh()) for n in run.sizes}
            asyncio.run(
                bench_reads(urls, run.rounds, figures, plans=run.plans, handoffs=run.handoffs)
            )
            print(f"[{backend}] reads and handoffs measured", file=sys.stderr, flush=True)
        with databases(backend, cluster) as fresh, fresh() as url:
            asyncio.run(bench_ship(url, run.members, run.ship_rounds, figures))
        print(f"[{backend}] ship flips measured", file=sys.stderr, flush=True)


# -- the report ---------------------------------------------------------------------------------


def report(run: GrowthRun) -> list[str]:
    """Prints the tables; returns what missed."""
    missed: list[str] = []
    largest, smallest = max(run.sizes), min(run.sizes)
    head = " | ".join(f"{b} {n:,}" for b in run.backends for n in run.sizes)
    print(f"\np50 / p99 in ms, by tasks stored ({run.rounds} rounds each)\n")
    print(f"| operation | {head} | growth, p50 {largest:,} / {smallest:,} | queries |")
    print("| --- |" + " --- |" * (len(run.backends) * len(run.sizes) + 2))
    names = list(next(iter(run.results.values())).reads)
    for name in names:
        cells, growth, queries = [], [], []
        for backend in run.backends:
            series = run.results[backend].reads[name]
            cells += [f"{series[n][0]:.1f} / {series[n][1]:.1f}" for n in run.sizes]
            ratio = series[largest][0] / series[smallest][0]
            growth.append(f"{ratio:.1f}×")
            count = run.results[backend].queries.get(name)
            queries.append("" if count is None else str(count))
            held = name in run.results[backend].held
            if held and series[largest][1] > TARGET_MS:
                missed.append(f"{backend}: {name} p99 {series[largest][1]:.1f} ms at {largest:,}")
            flat_held = not name.startswith("(before")
            if flat_held and ratio > FLAT and len(run.sizes) > 1:
                missed.append(f"{backend}: {name} not flat ({ratio:.1f}× from {smallest:,})")
        counted = " / ".join(queries) if any(queries) else ""
        print(f"| {name} | " + " | ".join(cells) + " | " + " / ".join(growth) + f" | {counted} |")
    members = run.members
    print(f"\nthe ship flip, median ms ({run.ship_rounds} rounds), and ms per member\n")
    print("| members | " + " | ".join(run.backends) + " |")
    print("| --- |" + " --- |" * len(run.backends))
    for m in members:
        cells = []
        for backend in run.backends:
            med = statistics.median(run.results[backend].ships[m])
            cells.append(f"{med:,.0f} ms ({med / m:.2f} ms/member)")
        print(f"| {m:,} | " + " | ".join(cells) + " |")
    for backend in run.backends:
        ships = run.results[backend].ships
        per = [statistics.median(ships[m]) / m for m in members if m >= 100]
        if len(per) > 1 and per[-1] > FLAT * per[0]:
            missed.append(f"{backend}: the ship flip grows faster than linear ({per})")
    if run.plans:
        for backend in run.backends:
            postgresql = backend == "postgresql"
            print(f"\nquery plans on {backend} at {largest:,} tasks\n")
            for name, plans in run.results[backend].plans.items():
                print(f"## {name}")
                shown = set()
                for statement, plan in plans:
                    if (statement[:60], plan) in shown:
                        continue
                    shown.add((statement[:60], plan))
                    print(f"   {statement[:160]}")
                    print("     " + plan.replace("\n", "\n     "))
                    for table in scans(plan, postgresql):
                        missed.append(f"{backend}: {name} reads all of {table}")
    for backend in run.backends:
        seeded = run.results[backend].seeded_s
        print(f"{backend}: seeded " + ", ".join(f"{n:,} in {s:.1f} s" for n, s in seeded.items()))
    return missed


def parse_sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--sizes", type=parse_sizes, help="tasks stored, e.g. 1000,10000")
    parser.add_argument("--members", type=parse_sizes, help="ship sizes, e.g. 10,100")
    parser.add_argument("--rounds", type=int, help="timed calls of each operation per size")
    parser.add_argument("--plans", action="store_true", help="print each operation's plans")
    args = parser.parse_args(argv)
    run = GrowthRun(
        backends=tuple(b for b in args.backends.split(",") if b),
        sizes=args.sizes or (QUICK_SIZES if args.quick else SIZES),
        members=args.members or (QUICK_MEMBERS if args.quick else MEMBERS),
        rounds=args.rounds or (50 if args.quick else 200),
        ship_rounds=3,
        handoffs=60 if args.quick else 300,
        plans=args.plans,
    )
    unknown = set(run.backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backends: {sorted(unknown)}")
    t0 = time.perf_counter()
    measure(run)
    missed = report(run)
    print(f"whole run {time.perf_counter() - t0:.0f} s")
    for line in missed:
        print(f"MISSED: {line}")
    print("targets: " + ("MISSED" if missed else "met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
