"""Every move of both machines, allowed and refused, table-driven against real rows."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from conductor.errors import InvalidMove
from conductor.machines import (
    RELEASE_MACHINE,
    RELEASE_MOVES,
    TASK_MACHINE,
    TASK_MOVES,
    Move,
    ReleaseFlow,
    TaskFlow,
)
from conductor.states import ReleaseState, TaskState
from store.db import Database
from store.models import Release, StageEvent, Task

T, R = TaskState, ReleaseState

# The spec's tables, written out independently of conductor.machines so that a change to the
# machine that the spec does not make fails here.
TASK_ALLOWED = {
    ("design", T.CREATED): T.DESIGNED,
    ("build", T.CREATED): T.BUILDING,
    ("build", T.DESIGNED): T.BUILDING,
    ("build", T.SUBMITTED): T.BUILDING,
    ("build", T.REVIEWED): T.BUILDING,
    ("submit", T.CREATED): T.SUBMITTED,
    ("submit", T.DESIGNED): T.SUBMITTED,
    ("submit", T.BUILDING): T.SUBMITTED,
    ("approve", T.SUBMITTED): T.REVIEWED,
    ("request_changes", T.SUBMITTED): T.BUILDING,
    ("request_changes", T.REVIEWED): T.BUILDING,
    ("assemble", T.REVIEWED): T.ASSEMBLED,
    ("unassemble", T.ASSEMBLED): T.REVIEWED,
    ("ship", T.ASSEMBLED): T.SHIPPED,
    # after the ship: the release rolled back, its members reviewed again
    ("roll_back", T.SHIPPED): T.REVIEWED,
}
RELEASE_ALLOWED = {
    ("assemble", R.ASSEMBLING): R.ASSEMBLED,
    ("ship", R.ASSEMBLED): R.SHIPPED,
    ("abandon", R.ASSEMBLING): R.ABANDONED,
    ("abandon", R.ASSEMBLED): R.ABANDONED,
    ("roll_back", R.SHIPPED): R.ROLLED_BACK,
}
TASK_TRIGGERS = sorted({t for t, _ in TASK_ALLOWED})
RELEASE_TRIGGERS = sorted({t for t, _ in RELEASE_ALLOWED})


def test_machines_hold_exactly_the_spec_moves() -> None:
    declared = {(t, s): d for t, sources, d in TASK_MOVES for s in sources}
    assert declared == TASK_ALLOWED
    declared_r = {(t, s): d for t, sources, d in RELEASE_MOVES for s in sources}
    assert declared_r == RELEASE_ALLOWED
    # No auto transitions: no to_<state>() back doors on the machines.
    assert set(TASK_MACHINE.events) == set(TASK_TRIGGERS)
    assert set(RELEASE_MACHINE.events) == set(RELEASE_TRIGGERS)


async def _task_row(db: Database, state: TaskState, name: str = "t") -> int:
    async with db.write() as session:
        release = Release(
            guild_id=1, slug=f"r-{name}-{state}", name="r", state=R.ABANDONED, opened_by="o"
        )
        session.add(release)
        await session.flush()
        task = Task(
            guild_id=1, slug=f"{name}-{state}", title="t", state=state, extra={}, dependencies=[]
        )
        session.add(task)
        await session.flush()
        return task.id


@pytest.mark.parametrize(
    ("trigger", "state"),
    list(itertools.product(TASK_TRIGGERS, list(TaskState))),
    ids=str,
)
async def test_task_move(db: Database, trigger: str, state: TaskState) -> None:
    task_id = await _task_row(db, state)
    expected = TASK_ALLOWED.get((trigger, state))
    async with db.sessions() as session:
        task = await session.get_one(Task, task_id)
        flow = TaskFlow(task, session)
        if expected is None:
            with pytest.raises(InvalidMove) as refused:
                await flow.fire(trigger, Move(actor="tester"))
            assert f"is {state.value}; it can't move to" in str(refused.value)
            assert task.state is state
        else:
            await flow.fire(trigger, Move(actor="tester", actor_id=7, model="m", tokens=3))
            assert task.state is expected
        await session.commit()
    async with db.read() as session:
        events = (
            await session.scalars(select(StageEvent).where(StageEvent.task_id == task_id))
        ).all()
        stored = await session.get_one(Task, task_id)
    if expected is None:
        assert events == []
        assert stored.state is state
    else:
        assert [
            (e.from_state, e.to_state, e.trigger, e.actor, e.model, e.tokens) for e in events
        ] == [(state, expected, trigger, "tester", "m", 3)]
        assert stored.state is expected


@pytest.mark.parametrize(
    ("trigger", "state"),
    list(itertools.product(RELEASE_TRIGGERS, list(ReleaseState))),
    ids=str,
)
async def test_release_move(db: Database, trigger: str, state: ReleaseState) -> None:
    expected = RELEASE_ALLOWED.get((trigger, state))
    async with db.sessions() as session:
        release = Release(guild_id=1, slug="r", name="r", state=state, opened_by="o")
        session.add(release)
        await session.flush()
        flow = ReleaseFlow(release, member_count=1)
        if expected is None:
            with pytest.raises(InvalidMove) as refused:
                await flow.fire(trigger, Move(actor="olga"))
            message = str(refused.value)
            if state in (R.ABANDONED, R.ROLLED_BACK):
                assert f"{state.value} is final" in message  # a terminal release never revives
            assert release.state is state
        else:
            await flow.fire(trigger, Move(actor="olga"))
            assert release.state is expected
            stamp = {
                R.ASSEMBLED: release.assembled_at,
                R.SHIPPED: release.shipped_at,
                R.ABANDONED: release.abandoned_at,
                R.ROLLED_BACK: release.rolled_back_at,
            }[expected]
            assert stamp is not None


async def test_assemble_guard_needs_a_member(db: Database) -> None:
    async with db.sessions() as session:
        release = Release(guild_id=1, slug="empty", name="e", state=R.ASSEMBLING, opened_by="o")
        session.add(release)
        await session.flush()
        with pytest.raises(InvalidMove, match="has no members yet"):
            await ReleaseFlow(release, member_count=0).fire("assemble", Move(actor="o"))
        assert release.state is R.ASSEMBLING


async def test_flows_detach_from_the_shared_machine(db: Database) -> None:
    task_id = await _task_row(db, T.CREATED)
    async with db.sessions() as session:
        task = await session.get_one(Task, task_id)
        for trigger in ("design", "build", "submit"):
            await TaskFlow(task, session).fire(trigger, Move(actor="a"))
        with pytest.raises(InvalidMove):
            await TaskFlow(task, session).fire("ship", Move(actor="a"))
        # Stage events are queued for one bulk insert at the next explicit flush or commit.
        assert await session.scalar(select(func.count()).select_from(StageEvent)) == 0
        await session.flush()
        count = await session.scalar(select(func.count()).select_from(StageEvent))
    assert count == 3
    # no per-row models: the moves one after the other shared one shell, which holds no flow
    assert len(TASK_MACHINE.models) <= 1
    assert all(shell.flow is None for shell in TASK_MACHINE.models)


async def test_moves_in_flight_at_once_each_have_a_shell_of_their_own(db: Database) -> None:
    """Two moves awaiting their records at the same time: the machine cancels another task's
    transition on the same model when a new one passes its conditions, so two moves on one
    shell would lose one. Each gets its own, and both land."""
    first_id = await _task_row(db, T.CREATED, "first")
    second_id = await _task_row(db, T.CREATED, "second")
    recording = asyncio.Event()
    go_on = asyncio.Event()

    class Slow(TaskFlow):
        async def _after_move(self, event: Any) -> None:
            recording.set()
            await go_on.wait()  # still recording when the other move begins
            await super()._after_move(event)

    async with db.sessions() as session:
        first = await session.get_one(Task, first_id)
        second = await session.get_one(Task, second_id)
        held = asyncio.create_task(Slow(first, session).fire("design", Move(actor="a")))
        await recording.wait()
        await TaskFlow(second, session).fire("design", Move(actor="a"))
        go_on.set()
        await held  # not cancelled by the other move
        assert (first.state, second.state) == (T.DESIGNED, T.DESIGNED)
    assert len(TASK_MACHINE.models) >= 2
    assert all(shell.flow is None for shell in TASK_MACHINE.models)


@pytest.mark.parametrize(
    ("trigger", "state"),
    list(itertools.product(TASK_TRIGGERS, list(TaskState))),
    ids=str,
)
async def test_a_move_of_many_obeys_the_same_table(
    db: Database, trigger: str, state: TaskState
) -> None:
    """``move_all`` (a release's members at once) allows and refuses exactly what ``fire``
    does, records the same stage event, and moves none if one may not move."""
    movable = next(source for (name, source) in TASK_ALLOWED if name == trigger)
    other = await _task_row(db, movable, name="other")
    task_id = await _task_row(db, state)
    expected = TASK_ALLOWED.get((trigger, state))
    async with db.sessions() as session:
        tasks = [await session.get_one(Task, other), await session.get_one(Task, task_id)]
        move = Move(actor="tester", actor_id=7, model="m", tokens=3)
        if expected is None:
            with pytest.raises(InvalidMove, match=f"is {state.value}; it can't move to"):
                await TaskFlow.move_all(tasks, trigger, move, session)
        else:
            await TaskFlow.move_all(tasks, trigger, move, session)
        await session.commit()
    async with db.read() as session:
        events = (
            await session.scalars(select(StageEvent).where(StageEvent.task_id == task_id))
        ).all()
        stored = await session.get_one(Task, task_id)
        other_stored = await session.get_one(Task, other)
    if expected is None:
        assert events == [] and stored.state is state
        assert other_stored.state is movable  # nothing moved, not even the task that could
    else:
        assert [
            (e.from_state, e.to_state, e.trigger, e.actor, e.model, e.tokens) for e in events
        ] == [(state, expected, trigger, "tester", "m", 3)]
        assert stored.state is expected and stored.state_since == events[0].at
        assert other_stored.state is TASK_ALLOWED[(trigger, movable)]
