"""A database that stops taking writes in the middle of a ship: the run stops where it was last
recorded, the operator is told so (not "something went wrong", not "nothing changed": the
release has shipped), and the reconcile takes the run up again once the database is back; a
deploy whose end the database could not take is not run again, nor called interrupted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conductor.bootstrap import bootstrap
from conductor.releases.runs.driver import RunPaused
from conductor.states import ReleaseState, RunStatus, StepStatus
from store.db import Database
from tests.helpers import (
    GUILD,
    OPERATOR,
    TEST_APP,
    Build,
    DatabaseFault,
    FakeNotes,
    FakeRunner,
    MakeReviewed,
    Origin,
    assembled,
    deploy_command,
    deploys,
    ship,
)


async def test_a_read_only_database_mid_ship_pauses_the_run_and_the_reconcile_ends_it(
    db: Database, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    notes = FakeNotes()
    domain = bootstrap(database=db, app=TEST_APP, runner=runner, notes=notes)
    slug = await assembled(domain, make_reviewed, "t")
    runner.gate = asyncio.Event()
    shipping = asyncio.create_task(ship(domain))
    await runner.started.wait()  # flipped; the seal is running
    fault = DatabaseFault(db)
    fault.start("read-only")
    runner.gate.set()
    with pytest.raises(RunPaused) as paused:
        await shipping
    fault.stop()
    said = str(paused.value)
    assert said.startswith("⛔ Conductor's database is read-only right now, so the ship of ")
    assert f"`{slug}` v1 stopped at its seal step" in said and "takes the ship up again" in said
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.SHIPPED
    assert notes.posts == []
    [run] = await domain.runs.runs.unfinished(GUILD)
    assert run.status is RunStatus.RUNNING
    assert run.step("seal").status is StepStatus.RUNNING

    runner.gate = None
    assert await domain.runs.resume(GUILD) == 1
    assert not await domain.runs.runs.unfinished(GUILD)
    finished = await domain.runs.runs.get(run.id)
    assert finished.status is RunStatus.DONE
    posted = [messages[0] for _, messages, _ in notes.posts]
    assert len([m for m in posted if f"Release notes — `{slug}`" in m]) == 1
    assert (await domain.releases.get(GUILD, slug)).seal_status is not None


async def test_a_deploy_whose_end_the_database_refused_is_not_run_again(
    db: Database,
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    notes: FakeNotes,
    seen: Path,
) -> None:
    """The database stops taking writes while the deploy runs: its end cannot be recorded, so
    the run pauses with its deploy recorded running. The process keeps how the deploy ended;
    taking the run up again once the database is back, it writes that first and goes on from
    the health step: one deploy, and nothing says it was interrupted."""
    fault = DatabaseFault(db)

    def refuse_there(point: str) -> None:
        if point == "ship:deploy:running":
            fault.start("read-only")

    domain = build(command=deploy_command(seen), checkpoint=refuse_there)
    origin.commit("feat/core", {"core.txt": "core\n"})
    await make_reviewed("core")
    slug = (await domain.releases.open(GUILD, "train", OPERATOR)).slug
    await domain.releases.add_task(GUILD, "core", OPERATOR)
    assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
    with pytest.raises(RunPaused) as paused:
        await ship(domain)
    fault.stop()
    assert f"`{slug}` v1 stopped at its deploy step" in str(paused.value)
    [run] = await domain.runs.runs.unfinished(GUILD)
    assert run.step("deploy").status is StepStatus.RUNNING  # as the database last took it
    assert len(deploys(seen)) == 1

    assert await domain.runs.resume(GUILD) == 1
    finished = await domain.runs.runs.get(run.id)
    assert finished.status is RunStatus.DONE
    assert [s.status for s in finished.steps] == [StepStatus.DONE] * 5
    assert len(deploys(seen)) == 1
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.SHIPPED
    posted = [messages[0] for _, messages, _ in notes.posts]
    [back] = [m for m in posted if m.startswith("♻️")]
    assert back.startswith("♻️ Conductor's database is back, so the ship of "), back
    assert "goes on: from the health step" in back, back
    assert not any("interrupted" in m for m in posted)
