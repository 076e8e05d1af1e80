"""A database that stops taking writes in the middle of a ship: the run stops where it was last
recorded, the operator is told so (not "something went wrong", not "nothing changed": the
release has shipped), and the reconcile takes the run up again once the database is back."""

from __future__ import annotations

import asyncio

import pytest

from conductor.bootstrap import bootstrap
from conductor.releases.runs.driver import RunPaused
from conductor.states import ReleaseState, RunStatus, StepStatus
from store.db import Database
from tests.helpers import (
    GUILD,
    TEST_APP,
    DatabaseFault,
    FakeNotes,
    FakeRunner,
    MakeReviewed,
    assembled,
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
