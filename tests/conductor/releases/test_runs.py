"""Every kind of run through the one driver, on real git, a real shell deploy and a health server:
the same lifecycle (admitted in the transaction that opens it, each step recorded and reported
as it goes, ended with its last step, owing nothing after), and the same refusal while another
run of the guild runs, whatever the two kinds: the same words before a confirmation (the rule
run read-only) and at the start, nothing started. A kind gets these tests by being listed in
``conductor.releases.runs.kinds``."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor.bootstrap import Conductor
from conductor.releases.runs.driver import RunRequest
from conductor.releases.runs.kinds import KINDS
from conductor.releases.runs.store import RunRunning, RunView
from conductor.states import FINISHED_STEPS, ReleaseState, RunKind, RunStatus, StepStatus
from tests.helpers import (
    GUILD,
    OPERATOR,
    Build,
    FakeNotes,
    MakeReviewed,
    Origin,
    deploy_command,
    deploys,
    end_run,
    open_run,
)

ALL = [kind.kind for kind in KINDS]
#: what each kind acts on here, and the state it leaves it in
TARGET = {RunKind.SHIP: "third", RunKind.ROLLBACK: "second", RunKind.REDEPLOY: "second"}
AFTER = {
    RunKind.SHIP: ReleaseState.SHIPPED,
    RunKind.ROLLBACK: ReleaseState.ROLLED_BACK,
    RunKind.REDEPLOY: ReleaseState.SHIPPED,
}


@pytest.fixture
async def world(build: Build, origin: Origin, make_reviewed: MakeReviewed, seen: Path) -> Conductor:
    """v1 and v2 shipped (production runs v2), v3 assembled: every kind can start."""
    domain = build(command=deploy_command(seen))
    for name in ("first", "second", "third"):
        origin.commit(f"feat/{name}", {f"{name}.txt": f"{name}\n"})
        await make_reviewed(name)
        await domain.releases.open(GUILD, name, OPERATOR)
        await domain.releases.add_task(GUILD, name, OPERATOR)
        assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
        if name != "third":
            shipped = await domain.runs.start(RunKind.SHIP, GUILD, OPERATOR)
            assert shipped.stopped is None, shipped
    return domain


async def slug_of(domain: Conductor, name: str) -> str:
    [release] = [r for r in await domain.releases.recent(GUILD, 10) if r.name == name]
    return release.slug


@pytest.mark.parametrize("kind", ALL)
async def test_every_kind_goes_through_the_same_lifecycle(
    kind: RunKind, world: Conductor, notes: FakeNotes, seen: Path
) -> None:
    slug = await slug_of(world, TARGET[kind])
    reported: list[RunView] = []

    async def progress(run: RunView) -> None:
        reported.append(run)

    before = len(deploys(seen))
    outcome = await world.runs.start(
        kind, GUILD, OPERATOR, request=RunRequest(reason="the lifecycle"), progress=progress
    )

    run = outcome.run
    assert run is not None and outcome.stopped is None, outcome
    assert (run.kind, run.status) == (kind, RunStatus.DONE)
    assert [s.name for s in run.steps] == list(world.runs.kind(kind).steps)
    assert all(s.status in FINISHED_STEPS for s in run.steps)
    assert run.told_at is not None and not run.owes_notice  # ended, owing nothing
    assert await world.runs.runs.unfinished(GUILD) == ()
    # reported as it went: the steps left pending one at a time, in the kind's order, and the
    # last report is the end
    moved: dict[str, int] = {}
    for at, view in enumerate(reported):
        for step in view.steps:
            if step.status is not StepStatus.PENDING:
                moved.setdefault(step.name, at)
    assert sorted(moved, key=lambda name: moved[name]) == list(world.runs.kind(kind).steps)
    assert len(set(moved.values())) == len(moved)
    assert reported[-1].status is RunStatus.DONE
    assert len(deploys(seen)) == before + 1  # deployed once
    assert (await world.releases.get(GUILD, slug)).state is AFTER[kind]
    assert (await world.runs.runs.get(run.id)).started_by == OPERATOR.label
    said = [messages[0] for posted_slug, messages, _ in notes.posts if posted_slug == slug]
    assert said, "the run spoke in the release's thread"


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("running", ALL)
async def test_while_any_run_of_the_guild_runs_every_kind_is_refused_in_the_same_words(
    kind: RunKind, running: RunKind, world: Conductor, seen: Path
) -> None:
    in_flight = await open_run(world, running, await slug_of(world, TARGET[running]))
    request = RunRequest(reason="one at a time")
    before = len(deploys(seen))

    with pytest.raises(RunRunning) as asked:
        await world.runs.plan(kind, GUILD, OPERATOR, request)
    with pytest.raises(RunRunning) as started:
        await world.runs.start(kind, GUILD, OPERATOR, request=request)

    said = str(started.value)
    assert str(asked.value) == said  # one rule: the same words before and at the start
    noun = world.runs.kind(running).words.noun
    assert said.startswith(
        f"A {noun} of `{await slug_of(world, TARGET[running])}` is already running (started by "
        f"{OPERATOR.label} at "
    )
    assert said.endswith(f"One run at a time: nothing was {world.runs.kind(kind).words.done}.")
    assert [r.id for r in await world.runs.runs.unfinished(GUILD)] == [in_flight.id]
    assert len(deploys(seen)) == before

    await end_run(world, in_flight)
    done = await world.runs.start(kind, GUILD, OPERATOR, request=request)
    assert done.run is not None and done.run.status is RunStatus.DONE
