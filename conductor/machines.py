"""The two state machines (transitions' AsyncMachine), exactly the moves of the spec.

One shared machine per kind; each unit of work wraps the ORM row in a thin flow object,
attaches it for the one move and detaches it. Every task move appends a StageEvent to the
session; the service commits after the trigger returns, or rolls everything back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from transitions.extensions.asyncio import AsyncMachine

from conductor.errors import InvalidMove
from conductor.states import ReleaseState, TaskState
from store.db import Session
from store.models import Release, StageEvent, Task
from store.types import utcnow

T = TaskState
R = ReleaseState

#: (trigger, sources, destination) — the task table of the spec, nothing else
TASK_MOVES: tuple[tuple[str, tuple[TaskState, ...], TaskState], ...] = (
    ("design", (T.CREATED,), T.DESIGNED),
    ("build", (T.CREATED, T.DESIGNED, T.SUBMITTED, T.REVIEWED), T.BUILDING),
    ("submit", (T.CREATED, T.DESIGNED, T.BUILDING), T.SUBMITTED),
    ("approve", (T.SUBMITTED,), T.REVIEWED),
    ("request_changes", (T.SUBMITTED, T.REVIEWED), T.BUILDING),
    ("assemble", (T.REVIEWED,), T.ASSEMBLED),
    ("unassemble", (T.ASSEMBLED,), T.REVIEWED),
    ("ship", (T.ASSEMBLED,), T.SHIPPED),
    # its release was rolled back: the work is back to reviewed, ready for another train
    ("roll_back", (T.SHIPPED,), T.REVIEWED),
)

#: the triggers a handoff may pull, by the state it names
HANDOFF_TRIGGERS: dict[TaskState, str] = {
    T.DESIGNED: "design",
    T.BUILDING: "build",
    T.SUBMITTED: "submit",
}

RELEASE_MOVES: tuple[tuple[str, tuple[ReleaseState, ...], ReleaseState], ...] = (
    ("assemble", (R.ASSEMBLING,), R.ASSEMBLED),
    ("ship", (R.ASSEMBLED,), R.SHIPPED),
    ("abandon", (R.ASSEMBLING, R.ASSEMBLED), R.ABANDONED),
    # an operator's decision after the ship, never automatic (the last shipped release, once)
    ("roll_back", (R.SHIPPED,), R.ROLLED_BACK),
)


@dataclass(frozen=True, slots=True)
class Move:
    """Who made a move and what the handoff reported about the work behind it."""

    actor: str
    actor_id: int | None = None
    model: str | None = None
    tokens: int | None = None
    cost: Decimal | None = None
    #: the Discord message id of the handoff behind the move
    handoff_message_id: int | None = None
    at: datetime | None = None


def _machine(
    moves: tuple[tuple[str, tuple[Any, ...], Any], ...], states: list[str]
) -> AsyncMachine:
    return AsyncMachine(
        model=None,
        states=states,
        transitions=[
            {
                "trigger": trigger,
                "source": [s.value for s in sources],
                "dest": dest.value,
                "conditions": "_may_move",
            }
            for trigger, sources, dest in moves
        ],
        initial=None,
        auto_transitions=False,
        send_event=True,
        after_state_change="_after_move",
    )


TASK_MACHINE = _machine(TASK_MOVES, [s.value for s in TaskState])
RELEASE_MACHINE = _machine(RELEASE_MOVES, [s.value for s in ReleaseState])


def allowed_triggers(moves: tuple[tuple[str, tuple[Any, ...], Any], ...], state: str) -> list[str]:
    return [trigger for trigger, sources, _ in moves if state in sources]


def destination(moves: tuple[tuple[str, tuple[Any, ...], Any], ...], trigger: str) -> str:
    for name, _, dest in moves:
        if name == trigger:
            return str(dest)
    raise KeyError(trigger)


class _Shell:
    """The model the machine holds: one move's :class:`_Flow` at a time, whose row it reads
    and writes the state of, and whose guard and record it calls.

    A machine attaches a model by hanging a bound method on it for every trigger, ``may_``
    check and state (some 30 attributes), and detaches it by taking them off again: over
    half of the CPU a handoff's move cost (py-spy, bench_wire). Shells are attached once and kept (:data:`_SHELLS`),
    each serving one move at a time, so two moves in flight at once (two tasks awaiting their
    records) never share a model, and the machine's cancelling of another task's transition
    on the same model never meets one."""

    def __init__(self, machine: AsyncMachine) -> None:
        self.flow: _Flow | None = None
        #: the state the machine set when it attached the shell, before any move
        self._idle = next(iter(machine.states))
        machine.add_model(self, initial=self._idle)

    def _current(self) -> _Flow:
        if self.flow is None:
            raise RuntimeError("the machine called a shell that serves no move")
        return self.flow

    @property
    def state(self) -> str:
        return self._idle if self.flow is None else self.flow.state

    @state.setter
    def state(self, value: str) -> None:
        if self.flow is None:
            self._idle = value
        else:
            self.flow.state = value

    def _may_move(self, event: Any) -> bool:
        return self._current()._may_move(event)

    async def _after_move(self, event: Any) -> None:
        await self._current()._after_move(event)


#: idle shells, by machine (its id)
_SHELLS: dict[int, list[_Shell]] = {}


class _Flow:
    """One move's model: proxies ``state`` to the row, records after each move (the machine
    drives it through a :class:`_Shell`)."""

    machine: AsyncMachine
    moves: tuple[tuple[str, tuple[Any, ...], Any], ...]
    noun: str

    def __init__(self, row: Task | Release) -> None:
        self.row = row
        self.blocked_reason: str | None = None

    @property
    def state(self) -> str:
        return str(self.row.state)

    @state.setter
    def state(self, value: str) -> None:
        self._set_state(value)

    def _set_state(self, value: str) -> None:
        raise NotImplementedError

    def _may_move(self, event: Any) -> bool:
        return True

    async def _after_move(self, event: Any) -> None:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.row.slug

    @classmethod
    def refusal_for(cls, name: str, current: str, trigger: str) -> str | None:
        """Why ``trigger`` is not allowed from ``current`` (None when it is), without a row."""
        allowed = allowed_triggers(cls.moves, current)
        if trigger in allowed:
            return None
        target = destination(cls.moves, trigger)
        if allowed:
            nexts = ", ".join(sorted({destination(cls.moves, t) for t in allowed}))
            hint = f"from {current} it can move to: {nexts}"
        else:
            hint = f"{current} is final"
        return f"{cls.noun.capitalize()} `{name}` is {current}; it can't move to {target} ({hint})."

    async def fire(self, trigger: str, move: Move) -> None:
        """Pull ``trigger`` or raise :class:`InvalidMove` naming the state and what is allowed."""
        current = self.state
        refusal = self.refusal_for(self.name, current, trigger)
        if refusal is not None:
            raise InvalidMove(refusal)
        shells = _SHELLS.setdefault(id(self.machine), [])
        shell = shells.pop() if shells else _Shell(self.machine)
        shell.flow = self
        try:
            moved = await getattr(shell, "trigger")(trigger, move=move)  # noqa: B009
        finally:
            shell.flow = None
            shells.append(shell)
        if not moved:
            raise InvalidMove(
                self.blocked_reason
                or f"{self.noun.capitalize()} `{self.name}` did not move ({trigger})."
            )


class TaskFlow(_Flow):
    machine = TASK_MACHINE
    moves = TASK_MOVES
    noun = "task"

    def __init__(self, row: Task, session: Session) -> None:
        super().__init__(row)
        self.task = row
        self.session = session

    def _set_state(self, value: str) -> None:
        self.task.state = TaskState(value)

    async def _after_move(self, event: Any) -> None:
        move: Move = event.kwargs["move"]
        at = move.at or utcnow()
        self._record(
            self.task,
            TaskState(event.transition.source),
            TaskState(event.transition.dest),
            trigger=event.event.name,
            move=replace(move, at=at),
            session=self.session,
        )
        self.task.state_since = at

    @classmethod
    async def move_all(
        cls, tasks: Sequence[Task], trigger: str, move: Move, session: Session
    ) -> None:
        """The same move for many tasks at once (a release's members): every task is checked
        against the move table first, and if one may not move none does; then each is
        recorded exactly as :meth:`fire` would, and all move in one UPDATE. Tasks have no
        guards, so the table is the whole rule; skipping the machine's per-row attach, trigger
        and detach, and the unit of work's per-row diff, is what makes a 500-member ship take
        tens of milliseconds."""
        dest = TaskState(destination(cls.moves, trigger))
        for task in tasks:
            refusal = cls.refusal_for(task.slug, str(task.state), trigger)
            if refusal is not None:
                raise InvalidMove(refusal)
        if not tasks:
            return
        at = move.at or utcnow()
        timed = replace(move, at=at)
        for task in tasks:
            cls._record(task, task.state, dest, trigger=trigger, move=timed, session=session)
            # the rows' new values, as the UPDATE below writes them (not a change to flush)
            set_committed_value(task, "state", dest)
            set_committed_value(task, "state_since", at)
            set_committed_value(task, "updated_at", at)
        await session.execute(
            update(Task)
            .where(Task.id.in_([task.id for task in tasks]))
            .values(state=dest, state_since=at, updated_at=at)
            .execution_options(synchronize_session=False)
        )

    @staticmethod
    def _record(
        task: Task,
        source: TaskState,
        dest: TaskState,
        *,
        trigger: str,
        move: Move,
        session: Session,
    ) -> None:
        at = move.at or utcnow()
        since = task.state_since
        values = {
            "from_state": source,
            "to_state": dest,
            "trigger": trigger,
            "actor": move.actor,
            "actor_id": move.actor_id,
            "at": at,
            "seconds_in_previous": max(0.0, (at - since).total_seconds()),
            "model": move.model,
            "tokens": move.tokens,
            "cost": move.cost,
            "release_id": task.release_id,
            "handoff_message_id": move.handoff_message_id,
        }
        # Deferred: written in one bulk INSERT with every other move of this unit of work; the
        # task id is read then, so a task created in the same unit of work works too.
        session.defer_insert(StageEvent, lambda: {**values, "task_id": task.id})


class ReleaseFlow(_Flow):
    machine = RELEASE_MACHINE
    moves = RELEASE_MOVES
    noun = "release"

    def __init__(self, row: Release, *, member_count: int) -> None:
        super().__init__(row)
        self.release = row
        self.member_count = member_count

    def _set_state(self, value: str) -> None:
        self.release.state = ReleaseState(value)

    def _may_move(self, event: Any) -> bool:
        # Guards read only what is already loaded (the member count), never the database.
        if event.event.name == "assemble" and self.member_count == 0:
            self.blocked_reason = self.no_members(self.release.slug)
            return False
        return True

    @staticmethod
    def no_members(slug: str) -> str:
        return (
            f"Release `{slug}` has no members yet; "
            "add a reviewed task with `/release add` before assembling."
        )

    async def _after_move(self, event: Any) -> None:
        move: Move = event.kwargs["move"]
        release = self.release
        at = move.at or utcnow()
        dest = ReleaseState(event.transition.dest)
        if dest is R.ASSEMBLED:
            release.assembled_at, release.assembled_by = at, move.actor
        elif dest is R.SHIPPED:
            release.shipped_at, release.shipped_by, release.shipped_by_id = (
                at,
                move.actor,
                move.actor_id,
            )
        elif dest is R.ABANDONED:
            release.abandoned_at, release.abandoned_by = at, move.actor
        elif dest is R.ROLLED_BACK:
            release.rolled_back_at, release.rolled_back_by, release.rolled_back_by_id = (
                at,
                move.actor,
                move.actor_id,
            )
