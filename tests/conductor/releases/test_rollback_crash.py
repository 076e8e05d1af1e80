"""Crash safety of the rollback with real processes: a rollback run in a process of its own
(``ship_worker.py``), killed with SIGKILL at each step boundary, between the revert reaching
the origin and its record (a git hook kills it), between the flip's commit and its record,
between the seal's record and the step's, and between the notes reaching the thread and their
record; then taken up by another process. Whatever the kill point, the release and its members
agree, main gets exactly one revert, the rollback's deploy runs once, the seal is recorded
once and the outcome posted once. Killed during the deploy, the run is interrupted, the
operator told, and the next rollback completes without reverting again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from conductor.bootstrap import Conductor, bootstrap
from conductor.releases.git import REVERT_TRAILER
from conductor.states import ReleaseState, RunKind, ShipRunStatus, TaskState
from store.db import Database
from store.models import ReleaseSeal, ShipRun
from tests.conductor.releases.test_crash import Stage
from tests.helpers import GUILD, OPERATOR, FakeRunner, HealthServer, MakeReviewed, git


@pytest.fixture
async def health() -> AsyncIterator[HealthServer]:
    async with HealthServer() as server:
        yield server


class RollbackStage(Stage):
    """The crash test's world, with a deploy command that writes down what it deployed (a ship,
    or the rollback of which release) and a hook on the origin that can kill the worker right
    after a push has landed."""

    def __init__(self, tmp_path: Path, db_url: str, health: HealthServer) -> None:
        super().__init__(tmp_path, db_url, health)
        self.pidfile = tmp_path / "worker.pid"
        self.kill_on_push = tmp_path / "kill-on-push"
        hook = self.origin.bare / "hooks" / "post-receive"
        hook.write_text(
            f"#!/bin/sh\nif [ -f {self.kill_on_push} ]; then\n"
            f"  rm {self.kill_on_push}; kill -9 $(cat {self.pidfile})\nfi\n"
        )
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR)

    def config(self, mode: str, *, kill_at: str | None = None, slow: bool = False) -> str:
        loaded: dict[str, Any] = json.loads(super().config(mode, kill_at=kill_at, slow=slow))
        loaded["deploy"] = f'echo "$$:${{CONDUCTOR_ROLLBACK_OF:-ship}}" >> {self.deploys}; ' + (
            f"touch {self.marker}; sleep 30" if slow else "true"
        )
        loaded["pidfile"] = str(self.pidfile)
        return json.dumps(loaded)

    def deployed(self) -> list[str]:
        """What each deploy deployed: ``ship``, or the release a rollback rolled back."""
        return [line.split(":", 1)[1] for line in self._deploys()]

    def _deploys(self) -> list[str]:
        return self.deploys.read_text().split() if self.deploys.exists() else []

    def kill_deploy(self) -> None:
        """The deploy orphaned by the worker's death (its own process group)."""
        os.killpg(int(self._deploys()[-1].split(":")[0]), signal.SIGKILL)

    def reverts(self) -> list[str]:
        out = git(self.origin.bare, "log", "--format=%H", f"--grep={REVERT_TRAILER}", "main")
        return out.split()


@pytest.fixture
async def stage(tmp_path: Path, db_url: str, health: HealthServer) -> RollbackStage:
    return RollbackStage(tmp_path, db_url, health)


@pytest.fixture
def domain(db: Database, stage: RollbackStage) -> Conductor:
    return bootstrap(database=db, runner=FakeRunner(), git={"path": str(stage.clone)})


async def two_shipped(
    domain: Conductor, stage: RollbackStage, make_reviewed: MakeReviewed
) -> tuple[str, str]:
    """v1 (``core``) and v2 (``ui``), each shipped by a worker process; their slugs."""
    slugs = []
    for name, task in (("first", "core"), ("second", "ui")):
        stage.origin.commit(f"feat/{task}", {f"{task}.txt": f"{task}\n"})
        await make_reviewed(task)
        slugs.append((await domain.releases.open(GUILD, name, OPERATOR)).slug)
        await domain.releases.add_task(GUILD, task, OPERATOR)
        assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
        code, result = await stage.run(stage.config("ship"))
        assert code == 0 and result["state"] == "shipped", result
    return slugs[0], slugs[1]


async def consistent(domain: Conductor, slug: str) -> ReleaseState:
    """The release and its member (``ui``) agree; returns the release's state."""
    release = await domain.releases.get(GUILD, slug)
    task = (await domain.tasks.card(GUILD, "ui")).task
    expected = {
        ReleaseState.SHIPPED: (TaskState.SHIPPED, slug),
        ReleaseState.ROLLED_BACK: (TaskState.REVIEWED, None),
    }[release.state]
    assert (task.state, task.release_slug) == expected, (release.state, task)
    return release.state


async def rollback_seals(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(ReleaseSeal).where(ReleaseSeal.trigger == "rollback")
        )
        return int(count or 0)


async def rollback_runs(db: Database) -> list[ShipRunStatus]:
    async with db.read() as session:
        rows = await session.scalars(
            select(ShipRun.status).where(ShipRun.kind == RunKind.ROLLBACK).order_by(ShipRun.id)
        )
        return list(rows.all())


def outcomes(stage: RollbackStage, slug: str) -> list[str]:
    return [e["text"] for e in stage.thread() if e["text"].startswith(f"⏪ **Rolled back `{slug}`")]


@pytest.mark.parametrize(
    "kill_at",
    [
        "rollback:revert:running",
        "pushed",
        "rollback:revert:done",
        "rollback:deploy:done",
        "rollback:health:done",
        "rollback:flip:flipped",
        "rollback:flip:done",
        "rollback:seal:recorded",
        "rollback:seal:done",
        "rollback:notes:sent",
        "rollback:notes:done",
    ],
)
async def test_killed_at_each_step_the_rollback_resumes_and_finishes_once(
    kill_at: str,
    stage: RollbackStage,
    domain: Conductor,
    db: Database,
    make_reviewed: MakeReviewed,
) -> None:
    first, second = await two_shipped(domain, stage, make_reviewed)
    if kill_at == "pushed":
        stage.kill_on_push.touch()
    code, _ = await stage.run(stage.config("rollback", kill_at=kill_at))
    assert code == -signal.SIGKILL  # it died where it was told to
    await consistent(domain, second)
    assert len(stage.reverts()) <= 1
    if kill_at == "pushed":
        assert len(stage.reverts()) == 1  # the revert reached the origin, unrecorded

    code, resumed = await stage.run(stage.config("resume-rollback"))

    assert code == 0 and resumed["taken"] == 1
    assert await consistent(domain, second) is ReleaseState.ROLLED_BACK
    [revert] = stage.reverts()  # exactly one revert on main
    assert git(stage.origin.bare, "rev-parse", "main") == revert
    assert stage.deployed() == ["ship", "ship", second]  # the rollback deployed once
    assert await rollback_seals(db) == 1  # sealed once
    assert len(outcomes(stage, second)) == 1, stage.thread()  # the outcome posted once
    assert f"Production is `{first}` v1 again." in outcomes(stage, second)[0]
    assert await rollback_runs(db) == [ShipRunStatus.DONE]
    if kill_at != "rollback:notes:done":  # told it was taken up again, and where
        [told] = [e["text"] for e in stage.thread() if e["text"].startswith("♻️")]
        assert f"during the rollback of `{second}` v2 and took it up again: from the " in told


@pytest.mark.parametrize("where", ["rollback:deploy:running", "inside the deploy"])
async def test_killed_during_the_deploy_it_is_interrupted_and_the_next_rollback_completes(
    where: str,
    stage: RollbackStage,
    domain: Conductor,
    db: Database,
    make_reviewed: MakeReviewed,
) -> None:
    _, second = await two_shipped(domain, stage, make_reviewed)
    if where == "inside the deploy":
        process = await stage.worker(stage.config("rollback", slow=True))
        for _ in range(300):
            if stage.marker.exists():
                break
            await asyncio.sleep(0.05)
        assert stage.marker.exists()
        process.kill()
        await process.wait()
        stage.kill_deploy()
    else:
        code, _ = await stage.run(stage.config("rollback", kill_at=where))
        assert code == -signal.SIGKILL
    [revert] = stage.reverts()

    code, resumed = await stage.run(stage.config("resume-rollback"))

    assert code == 0 and resumed["taken"] == 1
    assert await consistent(domain, second) is ReleaseState.SHIPPED  # not flipped
    assert await rollback_runs(db) == [ShipRunStatus.INTERRUPTED]
    assert stage.deployed().count(second) <= 1  # not run again by the resume
    [told] = [e["text"] for e in stage.thread() if e["kind"] == "ping"]
    assert "was interrupted" in told and f"<@{OPERATOR.id}>" in told
    [said] = [e["text"] for e in stage.thread() if e["text"].startswith("⚠️ The rollback")]
    assert "Check production, then `/release rollback` again" in said
    assert f"`{second}` is still shipped" in said

    code, again = await stage.run(stage.config("rollback"))

    assert code == 0 and again["state"] == "rolled_back", again
    assert await consistent(domain, second) is ReleaseState.ROLLED_BACK
    assert stage.reverts() == [revert]  # not reverted twice
    assert stage.deployed()[-1] == second
    assert await rollback_runs(db) == [ShipRunStatus.INTERRUPTED, ShipRunStatus.DONE]
