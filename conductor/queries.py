"""Reads shared by the services: ORM rows turned into the plain views of ``conductor.views``
(no ORM row leaves the domain), and the lookups every service needs (a release or a task by
slug, the active release, the last shipped one, the release that holds the train, the lock)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import BigInteger, Select, and_, bindparam, exists, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, aliased, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from conductor.costs import SpendUnit, release_cost
from conductor.errors import NotFound
from conductor.ordering import merge_order
from conductor.states import (
    ENDING_STEPS,
    TRAIN_HOLDING_SEALS,
    HandoffOutcome,
    ReleaseState,
    RunKind,
    RunStatus,
    StepName,
    StepStatus,
    TaskState,
)
from conductor.views import (
    Approver,
    DependencyView,
    HalfRollback,
    Hold,
    LockEventView,
    LockView,
    RcTestsView,
    ReleaseView,
    ReviewView,
    SizingView,
    StageView,
    TaskView,
)
from store.models import (
    ACTIVE_RELEASE,
    HandoffMessage,
    LockEvent,
    Release,
    ReleaseLock,
    ReviewRequest,
    Run,
    StageEvent,
    Task,
    TaskComment,
    TaskDependency,
)

#: the verdicts that hold the train while they stand on production's release


async def dependency_views(
    session: AsyncSession, guild_id: int, tasks: Sequence[Task]
) -> dict[int, tuple[DependencyView, ...]]:
    """Each task's dependencies with their current state and release, in one query."""
    wanted = {slug for t in tasks for slug in t.dependency_slugs}
    known: dict[str, tuple[TaskState, str | None]] = {}
    if wanted:
        rows = await session.execute(
            select(Task.slug, Task.state, Release.slug)
            .outerjoin(Release, Task.release_id == Release.id)
            .where(Task.guild_id == guild_id, Task.slug.in_(wanted))
        )
        known = {slug: (state, rel) for slug, state, rel in rows}
    return {
        t.id: tuple(
            DependencyView(s, *known[s]) if s in known else DependencyView(s, None)
            for s in t.dependency_slugs
        )
        for t in tasks
    }


def task_view(
    task: Task,
    deps: tuple[DependencyView, ...] = (),
    *,
    release_slug: str | None = None,
    sizing: SizingView | None = None,
) -> TaskView:
    if (
        release_slug is None
        and task.release_id is not None
        and "release" not in inspect(task).unloaded
    ):
        release_slug = task.release.slug if task.release else None
    return TaskView(
        slug=task.slug,
        title=task.title,
        kind=task.kind,
        branch=task.branch,
        state=task.state,
        release_slug=release_slug,
        author_name=task.author_name,
        author_id=task.author_id,
        dependencies=deps,
        created_at=task.created_at,
        state_since=task.state_since,
        sizing=sizing,
    )


def release_view(
    release: Release,
    members: Iterable[Task],
    deps: dict[int, tuple[DependencyView, ...]] | None = None,
) -> ReleaseView:
    """``deps`` may be left out where the members' dependency states are not needed (the
    answer to a ship or an abandon)."""
    member_views = tuple(
        task_view(
            t,
            deps[t.id] if deps is not None else (),
            release_slug=release.slug if t.release_id == release.id else None,
        )
        for t in members
    )
    return ReleaseView(
        slug=release.slug,
        name=release.name,
        state=release.state,
        opened_by=release.opened_by,
        opened_by_id=release.opened_by_id,
        opened_at=release.opened_at,
        version=release.version,
        assembled_at=release.assembled_at,
        shipped_at=release.shipped_at,
        shipped_by=release.shipped_by,
        shipped_by_id=release.shipped_by_id,
        abandoned_at=release.abandoned_at,
        abandon_reason=release.abandon_reason,
        rolled_back_at=release.rolled_back_at,
        rolled_back_by=release.rolled_back_by,
        rolled_back_by_id=release.rolled_back_by_id,
        rollback_reason=release.rollback_reason,
        notes_thread_id=release.notes_thread_id,
        rc_branch=release.rc_branch,
        rc_base=release.rc_base,
        rc_head=release.rc_head,
        rc_merges=dict(release.rc_merges or {}),
        rc_tests=rc_tests_view(release),
        merge_sha=release.merge_sha,
        members=member_views,
        seal_status=release.seal_status,
        seal_summary=release.seal_summary,
        seal_checked_at=release.seal_checked_at,
        seal_duration_ms=release.seal_duration_ms,
        seal_results=tuple(release.seal_results or ()),
        seal_error=release.seal_error,
        notes_intent_at=release.notes_intent_at,
        notes_posted_at=release.notes_posted_at,
        notes_message_id=release.notes_message_id,
        held_over_slug=release.held_over_slug,
        held_over_seal=release.held_over_seal,
        held_confirmed_by=release.held_confirmed_by,
        held_confirmed_by_id=release.held_confirmed_by_id,
        held_confirmed_at=release.held_confirmed_at,
        held_over_revert=release.held_over_revert,
    )


def rc_tests_view(release: Release) -> RcTestsView | None:
    if release.rc_tests_status is None or release.rc_tests_at is None:
        return None
    return RcTestsView(
        status=release.rc_tests_status,
        at=release.rc_tests_at,
        duration_ms=release.rc_tests_duration_ms or 0,
        tail=release.rc_tests_tail or "",
        log=release.rc_tests_log,
    )


async def release_members(session: AsyncSession, release: Release) -> list[Task]:
    """A release's members in merge order (dependencies first)."""
    members = (
        await session.scalars(
            select(Task)
            .where(Task.release_id == release.id)
            .options(selectinload(Task.dependencies))
            .order_by(Task.release_position, Task.id)
        )
    ).all()
    return merge_order(list(members))


async def load_release_view(
    session: AsyncSession, release: Release, *, spend: bool = False, notes: bool = False
) -> ReleaseView:
    """The full view: members in merge order with their dependencies' states (two queries;
    ``spend`` and ``notes`` as :func:`load_release_views`)."""
    return (await load_release_views(session, [release], spend=spend, notes=notes))[0]


#: the members of releases (``release_ids``), in the order they joined
_MEMBERS = (
    select(Task)
    .where(Task.release_id.in_(bindparam("release_ids", expanding=True)))
    .order_by(Task.release_position, Task.id)
)


def _dependencies_query() -> Select[TaskDependency, TaskState | None, str | None]:
    dep, dep_release = aliased(Task, name="dependency"), aliased(Release, name="its_release")
    return (
        select(TaskDependency, dep.state, dep_release.slug)
        .join(Task, Task.id == TaskDependency.task_id)
        .outerjoin(dep, and_(dep.guild_id == Task.guild_id, dep.slug == TaskDependency.depends_on))
        .outerjoin(dep_release, dep.release_id == dep_release.id)
        .where(TaskDependency.task_id.in_(bindparam("task_ids", expanding=True)))
        .order_by(TaskDependency.task_id, TaskDependency.position)
    )


#: the dependencies of tasks (``task_ids``), each with the state and release of the task it
#: names (none: no such task in the guild): built once, as an alias made per call costs more
#: than the query (SQLAlchemy adapts each of its columns anew)
_DEPENDENCIES = _dependencies_query()


#: the handoff moves of tasks (``task_ids``): what each reported (a task's "reported spend")
_SPEND = (
    select(
        StageEvent.task_id,
        StageEvent.from_state,
        StageEvent.to_state,
        StageEvent.model,
        StageEvent.tokens,
        StageEvent.cost,
    )
    .where(
        StageEvent.task_id.in_(bindparam("task_ids", expanding=True)),
        StageEvent.handoff_message_id.is_not(None),
    )
    .order_by(StageEvent.task_id, StageEvent.id)
)

#: the note of each task's (``task_ids``) last handoff that carried one, applied or noted (a
#: handoff to the state the task was in: its note is kept too); last by Discord's message id,
#: which orders messages as they were sent (a message the catch-up read back is stored after
#: newer ones)
_LAST_NOTES = select(HandoffMessage.task_id, HandoffMessage.note).where(
    HandoffMessage.message_id.in_(
        select(func.max(HandoffMessage.message_id))
        .where(
            HandoffMessage.task_id.in_(bindparam("task_ids", expanding=True)),
            HandoffMessage.outcome.in_((HandoffOutcome.APPLIED, HandoffOutcome.NOTED)),
            HandoffMessage.note.is_not(None),
            HandoffMessage.note != "",
        )
        .group_by(HandoffMessage.task_id)
    )
)


async def last_notes(session: AsyncSession, task_ids: Sequence[int]) -> dict[int, str | None]:
    """The note of each task's last handoff that carried one (as ``last_note``), by task id."""
    if not task_ids:
        return {}
    rows = await session.execute(_LAST_NOTES, {"task_ids": list(task_ids)})
    return {row.task_id: row.note for row in rows if row.task_id is not None}


async def load_release_views(
    session: AsyncSession,
    releases: Sequence[Release],
    *,
    spend: bool = False,
    notes: bool = False,
) -> list[ReleaseView]:
    """The full views of ``releases``, in their order, in two queries whatever their number:
    the members of them all, then the members' dependencies with each one's state and
    release (:func:`dependency_views`, joined). Both are read by key (release ids, then task
    ids): one join of both would let PostgreSQL read every dependency of every task.
    ``spend``: each release's :class:`~conductor.costs.ReleaseCost`, from every member's
    handoff moves (one more query for them all); ``notes``: each member's ``last_note`` (one
    more)."""
    if not releases:
        return []
    tasks = (await session.scalars(_MEMBERS, {"release_ids": [r.id for r in releases]})).all()
    of_task: dict[int, list[TaskDependency]] = {t.id: [] for t in tasks}
    guild_of = {t.id: t.guild_id for t in tasks}
    known: dict[tuple[int, str], tuple[TaskState, str | None]] = {}
    if tasks:
        rows = await session.execute(_DEPENDENCIES, {"task_ids": list(of_task)})
        for dependency, state, release_slug in rows:
            of_task[dependency.task_id].append(dependency)
            if state is not None:
                known[guild_of[dependency.task_id], dependency.depends_on] = (state, release_slug)
    members: dict[int, list[Task]] = {r.id: [] for r in releases}
    for task in tasks:
        if "dependencies" in inspect(task).unloaded:
            set_committed_value(task, "dependencies", of_task[task.id])
        members[task.release_id].append(task)  # type: ignore[index]
    views = []
    for release in releases:
        ordered = members[release.id] = merge_order(members[release.id])
        deps = {
            t.id: tuple(
                DependencyView(s, *known[t.guild_id, s])
                if (t.guild_id, s) in known
                else DependencyView(s, None)
                for s in t.dependency_slugs
            )
            for t in ordered
        }
        views.append(release_view(release, ordered, deps))
    task_ids = [t.id for t in tasks]
    if spend:
        units: dict[int, list[SpendUnit]] = {t.id: [] for t in tasks}
        if task_ids:
            slugs = {t.id: t.slug for t in tasks}
            for task_id, from_state, to_state, model, tokens, cost in await session.execute(
                _SPEND, {"task_ids": task_ids}
            ):
                units[task_id].append(
                    SpendUnit(slugs[task_id], from_state, to_state, model, tokens, cost)
                )
        views = [
            replace(
                view,
                cost=release_cost(
                    (u for t in members[release.id] for u in units[t.id]),
                    (t.slug for t in members[release.id]),
                ),
            )
            for release, view in zip(releases, views, strict=True)
        ]
    if notes and task_ids:
        rows = await session.execute(_LAST_NOTES, {"task_ids": task_ids})
        last: dict[int | None, str | None] = {row.task_id: row.note for row in rows}
        views = [
            replace(
                view,
                members=tuple(
                    replace(view_of, last_note=last.get(task.id))
                    for task, view_of in zip(members[release.id], view.members, strict=True)
                ),
            )
            for release, view in zip(releases, views, strict=True)
        ]
    return views


def review_view(request: ReviewRequest, task: Task) -> ReviewView:
    return ReviewView(
        request_id=request.id,
        task_slug=task.slug,
        task_title=task.title,
        branch=task.branch,
        author_name=task.author_name,
        author_id=request.author_id,
        round=request.round,
        status=request.status,
        required=request.required,
        approvers=tuple(Approver(a.user_id, a.user_name) for a in request.approvals),
        channel_id=request.channel_id,
        message_id=request.message_id,
        closed_by=request.closed_by,
        task_state=task.state,
    )


def stage_view(event: StageEvent, reason: str | None = None) -> StageView:
    return StageView(
        from_state=event.from_state,
        to_state=event.to_state,
        trigger=event.trigger,
        actor=event.actor,
        actor_id=event.actor_id,
        at=event.at,
        seconds_in_previous=event.seconds_in_previous,
        model=event.model,
        tokens=event.tokens,
        cost=event.cost,
        reason=reason,
    )


# -- lookups shared by the services ------------------------------------------------------------


async def distinct_values(session: AsyncSession, column: QueryableAttribute[int]) -> set[int]:
    """The distinct values of an indexed ``column`` (a guild id), one index seek each (a
    loose index scan, as a recursive query: the next value is the least one above the last),
    so a table of 100,000 rows over three guilds costs three seeks, not a scan."""
    first = select(select(func.min(column)).scalar_subquery().label("value"))
    found = first.cte("found", recursive=True)
    following = (
        select(func.min(column)).where(column > found.c.value).scalar_subquery().label("value")
    )
    found = found.union_all(select(following).where(found.c.value.is_not(None)))
    rows = await session.scalars(select(found.c.value).where(found.c.value.is_not(None)))
    return {int(value) for value in rows}


async def active_release(session: AsyncSession, guild_id: int) -> Release | None:
    """The guild's assembling or assembled release, if any (at most one: the database says
    so). The states are written as the one-active index's condition, so that SQLite reads
    that index (with bound values it cannot tell the index covers them, and reads every
    release of the guild)."""
    return await session.scalar(select(Release).where(Release.guild_id == guild_id, ACTIVE_RELEASE))


async def last_shipped(session: AsyncSession, guild_id: int) -> Release | None:
    """The release production runs: the shipped one with the highest version."""
    return await session.scalar(
        select(Release)
        .where(Release.guild_id == guild_id, Release.state == ReleaseState.SHIPPED)
        .order_by(Release.version.desc())
        .limit(1)
    )


@dataclass(frozen=True, slots=True)
class Standing:
    """What ``/release status`` starts from, read in one query (:func:`standing`)."""

    active: Release | None
    shipped: Release | None
    lock: ReleaseLock | None
    #: a rollback run of ``shipped`` ended failed or interrupted: :func:`half_rollback` may
    #: find it stopped half way (None of them: it finds nothing, and need not look)
    rollback_ended: bool


def _standing_query() -> Select[Release | None, Release | None, ReleaseLock | None, bool]:
    guild_id = bindparam("guild_id", type_=BigInteger)
    guild = select(guild_id.label("guild_id")).subquery("guild")
    active, shipped = aliased(Release, name="active"), aliased(Release, name="shipped")
    active_id = select(Release.id).where(Release.guild_id == guild_id, ACTIVE_RELEASE)
    shipped_id = (
        select(Release.id)
        .where(Release.guild_id == guild_id, Release.state == ReleaseState.SHIPPED)
        .order_by(Release.version.desc())
        .limit(1)
    )
    ended = exists().where(
        Run.release_id == shipped.id,
        Run.kind == RunKind.ROLLBACK,
        Run.status.in_((RunStatus.FAILED, RunStatus.INTERRUPTED)),
    )
    return (
        select(active, shipped, ReleaseLock, ended.label("rollback_ended"))
        .select_from(guild)
        .outerjoin(active, active.id == active_id.scalar_subquery())
        .outerjoin(shipped, shipped.id == shipped_id.scalar_subquery())
        .outerjoin(ReleaseLock, ReleaseLock.guild_id == guild.c.guild_id)
        .execution_options(populate_existing=True)
    )


#: :func:`standing`'s query, built once (see ``_MEMBERS``)
_STANDING = _standing_query()


async def standing(session: AsyncSession, guild_id: int) -> Standing:
    """The guild's active release (:func:`active_release`), its last shipped one
    (:func:`last_shipped`) and its lock (:func:`current_lock`) in one query: one row of the
    guild (``guild_id``) outer-joined to each, the releases found by the same subqueries (on
    the same indexes) as those lookups."""
    active, shipped, lock, ended = (await session.execute(_STANDING, {"guild_id": guild_id})).one()
    return Standing(active, shipped, lock, bool(ended))


async def held_by(session: AsyncSession, guild_id: int) -> Hold | None:
    """What holds the train: the last shipped release (production's), when its seal is red or
    error, or a rollback of it stopped half way (:func:`half_rollback`). A green re-seal
    clears the first; a rollback that ends done clears both (a rolled-back release is no
    longer the last shipped), and so does the next ship. None: the train runs free."""
    release = await last_shipped(session, guild_id)
    if release is None:
        return None
    sealed = release.seal_status in TRAIN_HOLDING_SEALS
    half = await half_rollback(session, release)
    if not sealed and half is None:
        return None
    return Hold(await load_release_view(session, release), sealed, half)


async def half_rollback(session: AsyncSession, release: Release) -> HalfRollback | None:
    """The newest rollback run of ``release`` (still shipped) that ended failed or
    interrupted after its revert put the revert on main; None when there is none."""
    if release.state is not ReleaseState.SHIPPED:
        return None
    runs = await session.scalars(
        select(Run)
        .where(
            Run.release_id == release.id,
            Run.kind == RunKind.ROLLBACK,
            Run.status.in_((RunStatus.FAILED, RunStatus.INTERRUPTED)),
        )
        .options(selectinload(Run.steps))
        .order_by(Run.id.desc())
    )
    for run in runs:
        steps = [(s.name, s.status, s.outcome or {}) for s in sorted(run.steps, key=lambda s: s.id)]
        half = half_rollback_of(
            release.slug,
            release.version,
            run_id=run.id,
            interrupted=run.status is RunStatus.INTERRUPTED,
            started_by=run.started_by,
            error=run.error,
            steps=steps,  # type: ignore[arg-type]
        )
        if half is not None:
            return half
    return None


def half_rollback_of(
    release_slug: str,
    version: int | None,
    *,
    run_id: int,
    interrupted: bool,
    started_by: str,
    error: str | None,
    steps: Sequence[tuple[StepName, StepStatus, Mapping[str, Any]]],
) -> HalfRollback | None:
    """The rule, on one ended rollback run: its revert step done with the revert on main
    (made, or found from an earlier attempt), and a later step that ended it."""
    revert = next((outcome for name, status, outcome in steps
                   if name == "revert" and status is StepStatus.DONE), None)  # fmt: skip
    if revert is None:
        return None
    sha = revert.get("revert") or (revert.get("sha") if revert.get("created") else None)
    ended = next(((name, outcome) for name, status, outcome in steps
                  if status in ENDING_STEPS), None)  # fmt: skip
    if not sha or ended is None:
        return None
    name, outcome = ended
    return HalfRollback(
        release_slug=release_slug,
        version=version,
        run=f"run {run_id}",
        started_by=started_by,
        revert=str(sha),
        step=name,
        interrupted=interrupted,
        why=error or str(outcome.get("summary") or "stopped"),
    )


async def current_lock(session: AsyncSession, guild_id: int) -> ReleaseLock | None:
    """The guild's release lock, if one stands (at most one: the primary key says so)."""
    return await session.get(ReleaseLock, guild_id, populate_existing=True)


def lock_view(lock: ReleaseLock) -> LockView:
    return LockView(
        guild_id=lock.guild_id,
        holder=lock.holder,
        holder_id=lock.holder_id,
        reason=lock.reason,
        since=lock.since,
    )


def lock_event_view(event: LockEvent) -> LockEventView:
    return LockEventView(
        kind=event.kind,
        actor=event.actor,
        actor_id=event.actor_id,
        at=event.at,
        reason=event.reason,
        previous_holder=event.previous_holder,
        previous_holder_id=event.previous_holder_id,
        previous_reason=event.previous_reason,
        held_since=event.held_since,
    )


async def require_release(session: AsyncSession, guild_id: int, slug: str) -> Release:
    """The guild's release ``slug``, or a :class:`NotFound` that says where to look."""
    release = await session.scalar(
        select(Release).where(Release.guild_id == guild_id, Release.slug == slug)
    )
    if release is None:
        raise NotFound(
            f"No release `{slug[:100]}`. `/release status` shows the active and last shipped ones."
        )
    return release


async def require_task(session: AsyncSession, guild_id: int, slug: str) -> Task:
    """The guild's task ``slug`` with its dependencies and release (one query), or a
    :class:`NotFound` that says where tasks come from."""
    task = (
        (
            await session.scalars(
                select(Task)
                .where(Task.guild_id == guild_id, Task.slug == slug.strip().lower())
                .options(joinedload(Task.dependencies), joinedload(Task.release))
            )
        )
        .unique()
        .one_or_none()
    )
    if task is None:
        raise NotFound(
            f"No task `{slug.strip()[:63]}`. Tasks appear with their first handoff; `/task list` shows them."
        )
    return task


async def timeline(session: AsyncSession, task: Task) -> tuple[StageView, ...]:
    """Every move of a task, oldest first, a ❌'s with the reason its reviewer replied (one
    query: the reasons joined by the move they explain)."""
    rows = await session.execute(
        select(StageEvent, TaskComment.text)
        .outerjoin(TaskComment, TaskComment.stage_event_id == StageEvent.id)
        .where(StageEvent.task_id == task.id)
        .order_by(StageEvent.id)
    )
    moves: dict[int, StageView] = {}
    for event, reason in rows:  # a move has one reason (two, in a race: the first is kept)
        moves.setdefault(event.id, stage_view(event, reason))
    return tuple(moves.values())


async def running_run(
    session: AsyncSession, guild_id: int, *, release_id: int | None = None
) -> Run | None:
    """The guild's run still running, whatever its kind (at most one: the database says so);
    with ``release_id``, only a run of that release."""
    query = select(Run).where(Run.guild_id == guild_id, Run.status == RunStatus.RUNNING)
    if release_id is not None:
        query = query.where(Run.release_id == release_id)
    return await session.scalar(query.order_by(Run.id).limit(1))
