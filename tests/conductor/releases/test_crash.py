"""Crash safety with real processes: a ship run in a process of its own, killed with SIGKILL at
each step boundary, inside the deploy, and between the notes reaching the thread and their
record; then started again. Whatever the kill point, the release and its members agree, the
deploy never runs twice, the notes are posted exactly once, and an interrupted deploy is told
to the operator. Two processes racing to resume one run: exactly one drives it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conductor.bootstrap import Conductor, bootstrap
from conductor.states import ReleaseState, ShipRunStatus, TaskState
from store.db import Database
from store.models import ReleaseSeal
from tests.helpers import GUILD, OPERATOR, FakeRunner, HealthServer, MakeReviewed, Origin, git

ROOT = Path(__file__).resolve().parents[3]
WORKER = "tests.conductor.releases.ship_worker"


@pytest.fixture
async def health() -> AsyncIterator[HealthServer]:
    async with HealthServer() as server:
        yield server


class Stage:
    """One crash test's world: the origin, the clone, the database, the thread (a file), the
    deploy command that counts its runs."""

    def __init__(self, tmp_path: Path, db_url: str, health: HealthServer) -> None:
        self.origin = Origin(tmp_path)
        self.clone = tmp_path / "clone"
        git(tmp_path, "clone", "--quiet", str(self.origin.bare), str(self.clone))
        self.db_url = db_url
        self.notes = tmp_path / "thread.jsonl"
        self.deploys = tmp_path / "deploys.txt"
        self.marker = tmp_path / "deploying"
        self.logs = tmp_path / "logs"
        self.health = health

    def config(self, mode: str, *, kill_at: str | None = None, slow: bool = False) -> str:
        extra = f"touch {self.marker}; sleep 30" if slow else "true"
        return json.dumps({
            "mode": mode,
            "kill_at": kill_at,
            "db_url": self.db_url,
            "clone": str(self.clone),
            "notes": str(self.notes),
            "production_url": self.health.url,
            "deploy": f"echo $$ >> {self.deploys}; {extra}",
            "logs": str(self.logs),
        })  # fmt: skip

    async def worker(self, config: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", WORKER, config, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def run(self, config: str) -> tuple[int, dict[str, Any]]:
        process = await self.worker(config)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        result = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
        assert process.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
        return process.returncode or 0, result

    def deploy_runs(self) -> list[int]:
        if not self.deploys.exists():
            return []
        return [int(line) for line in self.deploys.read_text().split()]

    def thread(self) -> list[dict[str, Any]]:
        if not self.notes.exists():
            return []
        return [json.loads(line) for line in self.notes.read_text().splitlines()]


async def assembled(domain: Conductor, stage: Stage, make_reviewed: MakeReviewed) -> str:
    stage.origin.commit("feat/core", {"core.txt": "core\n"})
    stage.origin.commit("feat/ui", {"ui.txt": "ui\n"})
    await make_reviewed("core")
    await make_reviewed("ui", depends_on="core")
    slug = (await domain.releases.open(GUILD, "train", OPERATOR)).slug
    await domain.releases.add_task(GUILD, "core", OPERATOR)
    await domain.releases.add_task(GUILD, "ui", OPERATOR)
    assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
    return slug


async def consistent(domain: Conductor, slug: str) -> ReleaseState:
    """The release and its members agree; returns the release's state."""
    release = await domain.releases.get(GUILD, slug)
    states = {(await domain.tasks.card(GUILD, m.slug)).task.state for m in release.members}
    expected = {
        ReleaseState.SHIPPED: {TaskState.SHIPPED},
        ReleaseState.ASSEMBLED: {TaskState.ASSEMBLED},
    }[release.state]
    assert states == expected, (release.state, states)
    return release.state


async def seals(db: Database) -> int:
    from sqlalchemy import func, select  # noqa: PLC0415

    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(ReleaseSeal)) or 0)


@pytest.fixture
async def stage(tmp_path: Path, db_url: str, health: HealthServer) -> Stage:
    return Stage(tmp_path, db_url, health)


@pytest.fixture
def domain(db: Database, stage: Stage) -> Conductor:
    return bootstrap(database=db, runner=FakeRunner(), git={"path": str(stage.clone)})


@pytest.mark.parametrize(
    "kill_at",
    ["health:done", "deploy:done", "ship:done", "seal:done", "notes:sent", "notes:done"],
)
async def test_killed_after_the_deploy_it_resumes_and_finishes_once(
    kill_at: str, stage: Stage, domain: Conductor, db: Database, make_reviewed: MakeReviewed
) -> None:
    slug = await assembled(domain, stage, make_reviewed)
    code, _ = await stage.run(stage.config("ship", kill_at=kill_at))
    assert code == -signal.SIGKILL  # it died where it was told to
    await consistent(domain, slug)

    code, resumed = await stage.run(stage.config("resume"))

    assert code == 0
    assert await consistent(domain, slug) is ReleaseState.SHIPPED
    assert len(stage.deploy_runs()) == 1  # never deployed twice
    posts = [e for e in stage.thread() if "Release notes — `" in e["text"]]
    assert len(posts) == 1, stage.thread()  # the notes exactly once
    assert await seals(db) == 1  # sealed once
    release = await domain.releases.get(GUILD, slug)
    assert release.notes_posted_at is not None and release.notes_message_id == posts[0]["id"]
    assert resumed["taken"] + resumed["posted"] >= 1  # the second process did the rest
    if resumed["taken"] and kill_at != "notes:done":  # told it was taken up again, and where
        [told] = [e["text"] for e in stage.thread() if e["text"].startswith("♻️")]
        assert f"during the ship of `{slug}` v1 and took it up again: from the " in told
    [run] = await _runs(db)
    assert run == ShipRunStatus.DONE


@pytest.mark.parametrize("where", ["deploy:running", "inside the deploy"])
async def test_killed_during_the_deploy_it_is_interrupted_and_the_operator_told(
    where: str, stage: Stage, domain: Conductor, db: Database, make_reviewed: MakeReviewed
) -> None:
    slug = await assembled(domain, stage, make_reviewed)
    if where == "inside the deploy":
        process = await stage.worker(stage.config("ship", slow=True))
        for _ in range(300):
            if stage.marker.exists():
                break
            await asyncio.sleep(0.05)
        assert stage.marker.exists()
        process.kill()
        await process.wait()
        os.killpg(stage.deploy_runs()[0], signal.SIGKILL)  # the orphaned deploy, after the kill
    else:
        code, _ = await stage.run(stage.config("ship", kill_at="deploy:running"))
        assert code == -signal.SIGKILL

    code, _ = await stage.run(stage.config("resume"))

    assert code == 0
    assert await consistent(domain, slug) is ReleaseState.ASSEMBLED
    assert len(stage.deploy_runs()) <= 1  # not run again by the resume
    told = [e["text"] for e in stage.thread() if e["kind"] == "ping"]
    assert len(told) == 1 and "was interrupted" in told[0] and f"<@{OPERATOR.id}>" in told[0]
    assert any(
        "the deploy was in flight, so it is not repeated" in e["text"] for e in stage.thread()
    )
    assert "`/release ship` again" in told[0] and "`/release abandon`" in told[0]
    assert await _runs(db) == [ShipRunStatus.INTERRUPTED]


async def test_two_processes_race_to_resume_one_run_and_one_wins(
    stage: Stage, domain: Conductor, db: Database, make_reviewed: MakeReviewed
) -> None:
    slug = await assembled(domain, stage, make_reviewed)
    code, _ = await stage.run(stage.config("ship", kill_at="health:done"))
    assert code == -signal.SIGKILL

    results = await asyncio.gather(
        stage.run(stage.config("resume")), stage.run(stage.config("resume"))
    )

    assert [code for code, _ in results] == [0, 0]
    assert sorted(r["taken"] for _, r in results) == [0, 1]
    assert await consistent(domain, slug) is ReleaseState.SHIPPED
    assert len(stage.deploy_runs()) == 1
    assert len([e for e in stage.thread() if "Release notes — `" in e["text"]]) == 1
    assert await seals(db) == 1


async def _runs(db: Database) -> list[ShipRunStatus]:
    from sqlalchemy import select  # noqa: PLC0415

    from store.models import ShipRun  # noqa: PLC0415

    async with db.read() as session:
        return list((await session.scalars(select(ShipRun.status).order_by(ShipRun.id))).all())
