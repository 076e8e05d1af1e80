"""A guild's releases as the web board's history and release pages read them: the history a
page at a time (keyset on the release id, newest first, never an offset), and one release's
whole record (its members with their last notes, every seal, every run with its steps).
Read-only: nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select, union
from sqlalchemy.orm import selectinload

from conductor.errors import InvalidInput, NotFound
from conductor.queries import last_notes, load_release_view, task_view
from conductor.releases.runs.store import RunView, run_view
from conductor.seals.records import SealView, seal_view
from conductor.states import ReleaseState, RunStatus, SealStatus
from conductor.views import ReleaseView, TaskView
from store.models import Release, ReleaseSeal, Run, StageEvent, Task

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from store.db import Database

#: releases on a page of the history
PAGE_SIZE = 25
#: the most a page may ask for
PAGE_MAX = 100


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One release in the history: what it is, what last happened to it and when."""

    id: int
    slug: str
    name: str
    state: ReleaseState
    version: int | None
    #: what last happened to it ("shipped", "rolled back", …) and when
    event: str
    at: datetime
    seal_status: SealStatus | None
    seal_summary: str | None
    members: int


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: tuple[HistoryRow, ...]
    #: the cursor of the next (older) page: the last row's id; None on the last page
    older: int | None


@dataclass(frozen=True, slots=True)
class ReleaseRecord:
    """One release with everything that happened to it."""

    id: int
    guild_id: int
    #: members with their last handoff's note (``last_note``)
    release: ReleaseView
    #: every seal, oldest first
    seals: tuple[SealView, ...]
    #: every run (ship, rollback, redeploy), oldest first, each with its steps
    runs: tuple[RunView, ...]
    #: the tasks that rode it and left it (a rollback sends them back to reviewed, an abandon
    #: or a removal frees them), as they are now, with their last notes
    former: tuple[TaskView, ...] = ()


def _last_event(release: Release) -> tuple[str, datetime]:
    for word, at in (
        ("rolled back", release.rolled_back_at),
        ("abandoned", release.abandoned_at),
        ("shipped", release.shipped_at),
        ("assembled", release.assembled_at),
    ):
        if at is not None:
            return word, at
    return "opened", release.opened_at


async def history_page(
    db: Database,
    guild_id: int,
    *,
    before: int | None = None,
    states: tuple[ReleaseState, ...] = (),
    seals: tuple[SealStatus, ...] = (),
    size: int = PAGE_SIZE,
) -> HistoryPage:
    """The ``size`` newest releases of the guild older than the release ``before`` (its id;
    None: from the newest), only in ``states`` and with a seal in ``seals`` when given. Two
    queries: the page (by the ``(guild_id, id)`` index), then the tasks that rode each
    counted (its members now, and those a rollback or an abandon sent back)."""
    if not 1 <= size <= PAGE_MAX:
        raise InvalidInput(f"A page holds 1 to {PAGE_MAX} releases; {size} is out of range.")
    query = select(Release).where(Release.guild_id == guild_id)
    if before is not None:
        query = query.where(Release.id < before)
    if states:
        query = query.where(Release.state.in_(states))
    if seals:
        query = query.where(Release.seal_status.in_(seals))
    async with db.read() as session:
        found = (await session.scalars(query.order_by(Release.id.desc()).limit(size + 1))).all()
        page = found[:size]
        counts: dict[int, int] = {}
        if page:
            ids = [r.id for r in page]
            rode = union(
                select(Task.release_id, Task.id.label("task_id")).where(Task.release_id.in_(ids)),
                select(StageEvent.release_id, StageEvent.task_id).where(
                    StageEvent.release_id.in_(ids)
                ),
            ).subquery()
            counted = await session.execute(
                select(rode.c.release_id, func.count(rode.c.task_id)).group_by(rode.c.release_id)
            )
            counts = {release_id: int(n) for release_id, n in counted if release_id is not None}
    rows = []
    for release in page:
        event, at = _last_event(release)
        rows.append(
            HistoryRow(
                id=release.id,
                slug=release.slug,
                name=release.name,
                state=release.state,
                version=release.version,
                event=event,
                at=at,
                seal_status=release.seal_status,
                seal_summary=release.seal_summary,
                members=counts.get(release.id, 0),
            )
        )
    return HistoryPage(tuple(rows), page[-1].id if len(found) > size else None)


async def release_record(db: Database, guild_id: int, key: str) -> ReleaseRecord:
    """The release ``key`` (its id, or its slug) of the guild, whole; :class:`NotFound` when
    the guild has none such."""
    key = key.strip().lower()
    query = select(Release).where(Release.guild_id == guild_id)
    if key.isascii() and key.isdigit() and len(key) <= 18:
        query = query.where(Release.id == int(key))
    else:
        query = query.where(Release.slug == key[:100])
    async with db.read() as session:
        release = await session.scalar(query)
        if release is None:
            raise NotFound(
                f"No release `{key[:100]}` in this guild: the history lists every release."
            )
        view = await load_release_view(session, release, notes=True)
        seals = (
            await session.scalars(
                select(ReleaseSeal)
                .where(ReleaseSeal.release_id == release.id)
                .order_by(ReleaseSeal.id)
            )
        ).all()
        runs = (
            await session.scalars(
                select(Run)
                .where(Run.release_id == release.id)
                .options(selectinload(Run.steps))
                .order_by(Run.id)
            )
        ).all()
        left = (
            await session.scalars(
                select(Task)
                .where(
                    Task.id.in_(
                        select(StageEvent.task_id).where(StageEvent.release_id == release.id)
                    ),
                    or_(Task.release_id.is_(None), Task.release_id != release.id),
                )
                .order_by(Task.id)
            )
        ).all()
        notes = await last_notes(session, [t.id for t in left])
        return ReleaseRecord(
            id=release.id,
            guild_id=guild_id,
            release=view,
            seals=tuple(seal_view(s) for s in seals),
            runs=tuple(run_view(r, release.slug) for r in runs),
            former=tuple(replace(task_view(t), last_note=notes.get(t.id)) for t in left),
        )


async def running(session: AsyncSession, guild_id: int) -> RunView | None:
    """The guild's run in progress (any kind), with its steps and its release's slug; None
    when none runs (one query by the partial unique index, a second only when one runs)."""
    found = (
        await session.execute(
            select(Run, Release.slug)
            .join(Release, Release.id == Run.release_id)
            .where(Run.guild_id == guild_id, Run.status == RunStatus.RUNNING)
            .options(selectinload(Run.steps))
            .order_by(Run.id)
            .limit(1)
        )
    ).first()
    if found is None:
        return None
    run, slug = found
    return run_view(run, slug)
