"""Crash safety with real processes, for every kind of run (ship, rollback, redeploy): a run in a
process of its own (``ship_worker.py``) killed with SIGKILL at each point where a step is
running, done, failed or interrupted, and between each side effect and its record (the notes,
the red alert, the notice of a stopped run and its ping, the revert's push), sometimes a second
time while resuming; then taken up by another process. After the last resume: the deploy ran
at most once, nothing that failed was retried, the release, its members, main and production
agree, and the notes, the alert with its ping and the notice with its ping were each sent
exactly once. And processes starting runs of one guild at the same instant: exactly one runs.

The kinds are listed once (``KINDS``): a new kind gets every test here by being listed.

Here on SQLite; ``test_crash_postgresql.py`` runs the same tests on PostgreSQL, as a file of
its own so that ``--dist loadfile`` gives each half a worker (the matrix is the suite's longest
file)."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conductor.bootstrap import Conductor
from conductor.releases.git import REVERT_TRAILER
from conductor.releases.runs.kinds import KINDS as KIND_CLASSES
from conductor.states import ReleaseState, RunKind, RunStatus, StepName, TaskState
from store.db import Database
from store.models import Run
from tests.conductor.releases.ship_worker import build
from tests.helpers import (
    GUILD,
    OPERATOR,
    HealthServer,
    Origin,
    bring_to_reviewed,
    git,
    gone,
    outbox,
)

pytestmark = pytest.mark.backends("sqlite")  # PostgreSQL: test_crash_postgresql.py

ROOT = Path(__file__).resolve().parents[3]
WORKER = "tests.conductor.releases.ship_worker"


@dataclass(frozen=True)
class KindCase:
    """What a kind's crash tests need to know of it."""

    kind: RunKind
    steps: tuple[StepName, ...]
    #: the release state after the run went through
    after: ReleaseState
    #: the first line of its notes, and what its alert's first line carries
    notes: str
    alert: str
    #: whether a failed deploy pings (production may be left half way)
    deploy_alerts: bool
    #: extra kill points between a side effect and its record
    extra: tuple[str, ...] = ()


KINDS = {
    RunKind.SHIP: KindCase(
        RunKind.SHIP, (), ReleaseState.SHIPPED, "Release notes — `{slug}`",
        "the smoke seal of `{slug}` v3 is", deploy_alerts=False,
        extra=("notes:sent", "alert:sent"),
    ),
    RunKind.ROLLBACK: KindCase(
        RunKind.ROLLBACK, (), ReleaseState.ROLLED_BACK, "⏪ **Rolled back `{slug}`",
        "after the rollback of `{slug}`", deploy_alerts=True,
        extra=("pushed", "flip:flipped", "seal:recorded", "notes:sent", "alert:sent"),
    ),
    RunKind.REDEPLOY: KindCase(
        RunKind.REDEPLOY, (), ReleaseState.SHIPPED, "🔁 **Redeployed `{slug}`",
        "after the redeploy of `{slug}`", deploy_alerts=True,
        extra=("seal:recorded", "notes:sent", "alert:sent"),
    ),
}  # fmt: skip
KINDS = {k: KindCase(**{**c.__dict__, "steps": cls.steps}) for cls in KIND_CLASSES
         for k, c in KINDS.items() if cls.kind is k}  # fmt: skip
assert set(KINDS) == set(RunKind), "every kind of run is in the crash matrix"


def kill_points(case: KindCase) -> list[str]:
    """Every point of a run that goes through: each step running (but the deploy: that one is
    interrupted, below) and done, and each side effect before its record."""
    points = [f"{s}:running" for s in case.steps if s != "deploy"]
    points += [f"{s}:done" for s in case.steps]
    return points + list(case.extra)


MATRIX = [(kind, point) for kind, case in KINDS.items() for point in kill_points(case)]


@pytest.fixture
async def health() -> AsyncIterator[HealthServer]:
    async with HealthServer() as server:
        yield server


class Stage:
    """One crash test's world: the origin (with a hook that can kill the worker right after a
    push landed), the clone, the database, the thread (a file), the deploy command that
    writes down each run's pid and kind, and can fail or hang."""

    def __init__(self, tmp_path: Path, db_url: str, health: HealthServer) -> None:
        self.root = tmp_path
        self.origin = Origin(tmp_path)
        self.clone = tmp_path / "clone"
        git(tmp_path, "clone", "--quiet", str(self.origin.bare), str(self.clone))
        self.db_url = db_url
        self.notes = tmp_path / "thread.jsonl"
        self.outbox = outbox(tmp_path)  # what the sandboxed deploy may write
        self.deploys = self.outbox / "deploys.txt"
        self.marker = self.outbox / "deploying"
        self.failing = self.outbox / "fail-deploy"
        self.slow = self.outbox / "slow-deploy"
        self.pidfile = tmp_path / "worker.pid"
        self.kill_on_push = tmp_path / "kill-on-push"
        self.health = health
        hook = self.origin.bare / "hooks" / "post-receive"
        hook.write_text(
            f"#!/bin/sh\nif [ -f {self.kill_on_push} ]; then\n"
            f"  rm {self.kill_on_push}; kill -9 $(cat {self.pidfile})\nfi\n"
        )
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR)

    def config(self, mode: str, *, kill_at: str | None = None, **extra: Any) -> dict[str, Any]:
        kind = "${CONDUCTOR_ROLLBACK_OF:+rollback}${CONDUCTOR_REDEPLOY:+redeploy}"
        deploy = (
            f'echo "$$:{kind}" >> {self.deploys}; '
            f"if [ -f {self.failing} ]; then echo no route to host; exit 3; fi; "
            f"if [ -f {self.slow} ]; then touch {self.marker}; sleep $(cat {self.slow}); fi"
        )
        return {
            "mode": mode, "kill_at": kill_at, "db_url": self.db_url, "clone": str(self.clone),
            "notes": str(self.notes), "production_url": self.health.url, "deploy": deploy,
            "logs": str(self.root / "logs"), "pidfile": str(self.pidfile),
            "outbox": str(self.outbox),
            **extra,
        }  # fmt: skip

    async def worker(self, config: dict[str, Any]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", WORKER, json.dumps(config), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def run(self, config: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        process = await self.worker(config)
        out, err = await asyncio.wait_for(process.communicate(), 300)
        result = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
        assert process.returncode in (0, -signal.SIGKILL), err.decode()[-3000:]
        return process.returncode or 0, result

    async def killed(self, mode: str, kill_at: str, **extra: Any) -> None:
        if kill_at == "pushed":
            self.kill_on_push.touch()
        code, result = await self.run(self.config(mode, kill_at=kill_at, **extra))
        assert code == -signal.SIGKILL, f"it did not reach {kill_at}: {result}"

    async def resume(self, **extra: Any) -> dict[str, Any]:
        code, result = await self.run(self.config("resume", **extra))
        assert code == 0
        return result

    async def killed_inside_the_deploy(self, mode: str) -> None:
        """The worker killed while its deploy runs: its sandbox goes with it."""
        self.slow.write_text("60")
        process = await self.worker(self.config(mode))
        async with asyncio.timeout(120):
            while not self.marker.exists():  # noqa: ASYNC110 - a file the deploy writes
                await asyncio.sleep(0.05)
        process.kill()
        await process.wait()
        assert await gone(str(self.marker)), "the deploy outlived the process that ran it"
        self.slow.unlink()

    def deploy_lines(self) -> list[str]:
        return self.deploys.read_text().split() if self.deploys.exists() else []

    def deployed(self, kind: RunKind) -> int:
        """How many deploys a run of ``kind`` started."""
        word = "" if kind is RunKind.SHIP else kind.value
        return sum(1 for line in self.deploy_lines() if line.split(":", 1)[1] == word)

    def thread(self) -> list[dict[str, Any]]:
        if not self.notes.exists():
            return []
        return [json.loads(line) for line in self.notes.read_text().splitlines()]

    def said(self, text: str, *, kind: str | None = None) -> list[str]:
        return [
            e["text"]
            for e in self.thread()
            if text in e["text"] and (kind is None or e["kind"] == kind)
        ]

    def reverts(self) -> list[str]:
        out = git(self.origin.bare, "log", "--format=%H", f"--grep={REVERT_TRAILER}", "main")
        return out.split()


@pytest.fixture
async def stage(tmp_path: Path, db_url: str, health: HealthServer) -> Stage:
    return Stage(tmp_path, db_url, health)


@pytest.fixture
async def world(stage: Stage, db: Database) -> AsyncIterator[Conductor]:
    """v1 and v2 shipped (production runs v2), v3 assembled: every kind can start."""
    domain = build(stage.config("ship"))
    try:
        for name in ("first", "second", "third"):
            stage.origin.commit(f"feat/{name}", {f"{name}.txt": f"{name}\n"})
            await bring_to_reviewed(domain, name)
            await domain.releases.open(GUILD, name, OPERATOR)
            await domain.releases.add_task(GUILD, name, OPERATOR)
            assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
            if name != "third":
                outcome = await domain.runs.start(RunKind.SHIP, GUILD, OPERATOR)
                assert outcome.stopped is None, outcome
        # what the test counts starts here
        stage.notes.unlink(missing_ok=True)
        stage.deploys.unlink(missing_ok=True)
        yield domain
    finally:
        await domain.db.dispose()


async def target(domain: Conductor, kind: RunKind) -> str:
    """The release a run of ``kind`` acts on here."""
    name = "third" if kind is RunKind.SHIP else "second"
    [release] = [r for r in await domain.releases.recent(GUILD, 10) if r.name == name]
    return release.slug


#: the runs the world made before the test's (the ships of v1 and v2)
WORLD_RUNS = 2


async def runs(db: Database, kind: RunKind) -> list[RunStatus]:
    """The test's runs of ``kind`` (not the world's), oldest first."""
    async with db.read() as session:
        rows = await session.scalars(
            select(Run.status).where(Run.kind == kind, Run.id > WORLD_RUNS).order_by(Run.id)
        )
        return list(rows.all())


async def agree(domain: Conductor, stage: Stage, slug: str, state: ReleaseState) -> None:
    """The release, its members, main and production agree with ``state``."""
    release = await domain.releases.get(GUILD, slug)
    assert release.state is state
    task = (await domain.tasks.card(GUILD, release.name)).task
    expected = {
        ReleaseState.SHIPPED: TaskState.SHIPPED,
        ReleaseState.ROLLED_BACK: TaskState.REVIEWED,
        ReleaseState.ASSEMBLED: TaskState.ASSEMBLED,
    }[state]
    assert task.state is expected, (state, task)
    main = git(stage.origin.bare, "rev-parse", "main")
    reverts = stage.reverts()
    if state is ReleaseState.ROLLED_BACK:
        assert reverts == [main]  # exactly one revert, and main is it
    else:
        assert reverts == []
        if state is ReleaseState.SHIPPED:
            assert main == release.merge_sha


@pytest.mark.parametrize(("kind", "kill_at"), MATRIX, ids=[f"{k}-{p}" for k, p in MATRIX])
async def test_killed_at_each_point_the_run_is_taken_up_and_everything_happens_once(
    kind: RunKind, kill_at: str, stage: Stage, world: Conductor, db: Database
) -> None:
    case = KINDS[kind]
    slug = await target(world, kind)
    prefix = f"{kind.value}:"
    point = kill_at if kill_at == "pushed" else prefix + kill_at

    await stage.killed(kind.value, point, red=True)
    resumed = await stage.resume(red=True)

    ended = kill_at == f"{case.steps[-1]}:done"  # the run ended with its last step
    assert ended or resumed["taken"] == 1
    await agree(world, stage, slug, case.after)
    assert stage.deployed(kind) == 1  # deployed once
    assert len(stage.said(case.notes.format(slug=slug))) == 1, stage.thread()  # notes once
    alerts = stage.said(case.alert.format(slug=slug), kind="ping")
    assert len(alerts) == 1, stage.thread()  # the red alert and its ping, once
    assert await runs(db, kind) == [RunStatus.DONE]
    if not ended:
        [told] = stage.said("♻️")
        assert f"during the {kind.value} of `{slug}`" in told and "took it up again" in told


SECOND = [
    (RunKind.SHIP, "deploy:done", "notes:sent"),
    (RunKind.SHIP, "seal:done", "alert:sent"),
    (RunKind.ROLLBACK, "revert:done", "flip:flipped"),
    (RunKind.ROLLBACK, "notes:sent", "alert:sent"),
    (RunKind.REDEPLOY, "deploy:done", "seal:recorded"),
    (RunKind.REDEPLOY, "notes:sent", "alert:sent"),
]


@pytest.mark.parametrize(("kind", "first", "second"), SECOND)
async def test_killed_again_while_resuming_everything_still_happens_once(
    kind: RunKind, first: str, second: str, stage: Stage, world: Conductor, db: Database
) -> None:
    case = KINDS[kind]
    slug = await target(world, kind)
    prefix = f"{kind.value}:"
    await stage.killed(kind.value, prefix + first, red=True)
    await stage.killed("resume", prefix + second, red=True)

    await stage.resume(red=True)

    await agree(world, stage, slug, case.after)
    assert stage.deployed(kind) == 1
    assert len(stage.said(case.notes.format(slug=slug))) == 1, stage.thread()
    assert len(stage.said(case.alert.format(slug=slug), kind="ping")) == 1, stage.thread()
    assert await runs(db, kind) == [RunStatus.DONE]


def stays(kind: RunKind) -> ReleaseState:
    """The release's state when a run of ``kind`` stopped before its end."""
    return ReleaseState.ASSEMBLED if kind is RunKind.SHIP else ReleaseState.SHIPPED


#: a failed deploy killed before its notice, between the notice and its ping, after the ping
#: (a kind whose failed deploy changed nothing in production pings nobody: no ping to kill at)
FAILED = [
    (kind, point)
    for kind, case in KINDS.items()
    for point in ("deploy:failed", "notice:sent", "ping:sent")
    if point != "ping:sent" or case.deploy_alerts
]


@pytest.mark.parametrize(("kind", "kill_at"), FAILED, ids=[f"{k}-{p}" for k, p in FAILED])
async def test_a_failed_deploy_killed_before_it_was_told_is_told_once_and_never_retried(
    kind: RunKind, kill_at: str, stage: Stage, world: Conductor, db: Database
) -> None:
    case = KINDS[kind]
    slug = await target(world, kind)
    prefix = f"{kind.value}:"
    stage.failing.touch()
    await stage.killed(kind.value, prefix + kill_at)
    stage.failing.unlink()  # the deploy would pass now: a resume must still not run it

    await stage.resume()

    assert stage.deployed(kind) == 1  # the failed deploy was never run again
    assert await runs(db, kind) == [RunStatus.FAILED]
    [notice] = stage.said("stopped at the deploy step: the deploy command failed (exit 3)",
                          kind="post")  # fmt: skip
    assert "no route to host" in notice and "Not done: the deploy" in notice
    pings = stage.said("stopped at the deploy step", kind="ping")
    assert len(pings) == (1 if case.deploy_alerts else 0), stage.thread()
    if kind is not RunKind.ROLLBACK:  # (the rollback's revert went out before its deploy)
        await agree(world, stage, slug, stays(kind))
    assert (await world.releases.get(GUILD, slug)).state is stays(kind)
    said = len(stage.thread())
    again = await stage.resume()  # nothing more is owed
    assert again["taken"] == 0 and len(stage.thread()) == said


@pytest.mark.parametrize("kind", list(KINDS))
async def test_an_unhealthy_production_killed_before_it_was_told_is_told_once(
    kind: RunKind, stage: Stage, world: Conductor, db: Database
) -> None:
    slug = await target(world, kind)
    prefix = f"{kind.value}:"
    stage.health.then = 503
    await stage.killed(kind.value, prefix + "health:failed", health_timeout=3)
    stage.health.then = 200

    await stage.resume()

    assert stage.deployed(kind) == 1
    assert await runs(db, kind) == [RunStatus.FAILED]
    assert len(stage.said("stopped at the health step", kind="post")) == 1, stage.thread()
    [ping] = stage.said("stopped at the health step", kind="ping")
    assert f"<@{OPERATOR.id}>" in ping
    assert (await world.releases.get(GUILD, slug)).state is stays(kind)


@pytest.mark.parametrize("kind", list(KINDS))
async def test_killed_inside_the_deploy_then_while_telling_it_the_deploy_never_runs_again(
    kind: RunKind, stage: Stage, world: Conductor, db: Database
) -> None:
    """Killed inside the deploy; the resuming process killed right after it recorded the
    deploy interrupted (before telling anyone); a third process: the deploy is not run a
    second time, and the thread is told once, with its ping once."""
    slug = await target(world, kind)
    prefix = f"{kind.value}:"
    await stage.killed_inside_the_deploy(kind.value)
    await stage.killed("resume", prefix + "deploy:interrupted")

    await stage.resume()

    assert stage.deployed(kind) == 1  # the orphaned one only
    assert await runs(db, kind) == [RunStatus.INTERRUPTED]
    assert (await world.releases.get(GUILD, slug)).state is stays(kind)
    [said] = stage.said("was interrupted: Conductor stopped while", kind="post")
    assert "Check production" in said and f"`{KIND_WORDS[kind]}` again" in said
    [ping] = stage.said("was interrupted", kind="ping")
    assert f"<@{OPERATOR.id}>" in ping
    assert len(stage.said("was in flight, so it is not repeated")) == 1


@pytest.mark.parametrize("kind", list(KINDS))
async def test_killed_between_the_interrupted_notice_and_its_ping_the_ping_is_sent_once(
    kind: RunKind, stage: Stage, world: Conductor
) -> None:
    prefix = f"{kind.value}:"
    await stage.killed(kind.value, prefix + "deploy:running")
    await stage.killed("resume", prefix + "notice:sent")

    await stage.resume()

    assert len(stage.said("was interrupted", kind="post")) == 1, stage.thread()
    assert len(stage.said("was interrupted", kind="ping")) == 1, stage.thread()
    assert stage.deployed(kind) == 0  # killed before the command started: it never ran


KIND_WORDS = {
    RunKind.SHIP: "/release ship",
    RunKind.ROLLBACK: "/release rollback",
    RunKind.REDEPLOY: "/release redeploy",
}


@pytest.mark.parametrize(
    "kinds",
    [(RunKind.SHIP, RunKind.ROLLBACK), (RunKind.SHIP, RunKind.ROLLBACK, RunKind.REDEPLOY)],
    ids=["ship-rollback", "ship-rollback-redeploy"],
)
async def test_processes_starting_runs_of_one_guild_at_the_same_instant_one_runs(
    kinds: tuple[RunKind, ...], stage: Stage, world: Conductor, db: Database
) -> None:
    go = stage.root / "go"
    stage.slow.write_text("2")  # each run's deploy takes a while: they would overlap
    workers = [await stage.worker(stage.config(k.value, go=str(go))) for k in kinds]
    await asyncio.sleep(1.5)  # (they are waiting for the word; this only lets them load)
    go.touch()
    results = []
    for process in workers:
        out, err = await asyncio.wait_for(process.communicate(), 300)
        assert process.returncode == 0, err.decode()[-3000:]
        results.append(json.loads(out.decode().strip().splitlines()[-1]))

    started = [r for r in results if "refused" not in r]
    refused = [r["refused"] for r in results if "refused" in r]
    assert len(started) == 1, results
    assert len(refused) == len(kinds) - 1
    assert all("already running" in r or "at the same moment" in r for r in refused), refused
    async with db.read() as session:
        assert len((await session.scalars(select(Run.id))).all()) == WORLD_RUNS + 1


@pytest.mark.parametrize("kind", list(KINDS))
async def test_two_processes_racing_to_take_up_one_run_one_drives_it(
    kind: RunKind, stage: Stage, world: Conductor, db: Database
) -> None:
    case = KINDS[kind]
    slug = await target(world, kind)
    prefix = f"{kind.value}:"
    await stage.killed(kind.value, prefix + "health:done", red=True)

    results = await asyncio.gather(stage.resume(red=True), stage.resume(red=True))

    assert sorted(r["taken"] for r in results) == [0, 1]
    await agree(world, stage, slug, case.after)
    assert stage.deployed(kind) == 1
    assert len(stage.said(case.notes.format(slug=slug))) == 1, stage.thread()
    assert len(stage.said(case.alert.format(slug=slug), kind="ping")) == 1, stage.thread()
    assert await runs(db, kind) == [RunStatus.DONE]
