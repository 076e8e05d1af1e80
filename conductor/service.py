"""The release service: every change to tasks, reviews and releases goes through here.

Each public method is one unit of work on its own session (``Database.write`` takes the write
lock up front on SQLite), drives the state machines, and returns plain views. Refusals raise a
:class:`~conductor.errors.ConductorError` whose text is meant for the user as it is.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from conductor.batching import GroupCommit
from conductor.errors import (
    Blocked,
    InvalidInput,
    InvalidMove,
    NotFound,
    ReleaseActive,
    ReleaseChanged,
)
from conductor.guilds import GuildConfigs
from conductor.handoffs import HandoffApplier, HandoffQueue
from conductor.machines import Move, ReleaseFlow, TaskFlow
from conductor.reactions import APPROVE, REJECT, WITHDRAW, Reaction, ReactionApplier
from conductor.readmodels import (
    dependency_views,
    load_release_view,
    release_members,
    release_view,
    review_view,
    stage_view,
    task_view,
)
from conductor.seals import SealRecords
from conductor.states import ACTIVE_RELEASE_STATES, ReleaseState, TaskState
from conductor.views import (
    Actor,
    HandoffResult,
    IncomingMessage,
    NoteView,
    ReactionResult,
    Reactor,
    ReleaseView,
    ReviewView,
    StageView,
    StatusView,
    TaskCard,
    TaskView,
)
from store.db import Session
from store.models import (
    HandoffMessage,
    Release,
    ReviewRequest,
    ReviewStatus,
    StageEvent,
    Task,
)
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

DEFAULT_REQUIRED_APPROVALS = 2
MAX_RELEASE_NAME = 60
MAX_REASON = 500
_NAME_JUNK = re.compile(r"[^a-z0-9]+")
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}-")


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def release_slug_for(name: str, on: date) -> str:
    """``2026-06-20-deploy-foundation`` from a free-text name and a day."""
    cleaned = _NAME_JUNK.sub("-", name.strip().lower()).strip("-")
    if not cleaned:
        raise InvalidInput(
            "A release needs a name with at least one letter or digit, "
            "e.g. `/release open deploy-foundation`."
        )
    if len(cleaned) > MAX_RELEASE_NAME:
        raise InvalidInput(
            f"That release name is too long ({len(cleaned)} characters; at most {MAX_RELEASE_NAME})."
        )
    return cleaned if _DATED.match(cleaned) else f"{on:%Y-%m-%d}-{cleaned}"


class ReleaseService:
    """The domain's one entry point for the Discord layer, the CLI and the tests."""

    def __init__(
        self, db: Database, *, required_approvals: int = DEFAULT_REQUIRED_APPROVALS
    ) -> None:
        if required_approvals < 1:
            raise ValueError("required_approvals must be at least 1")
        self.db = db
        self.required_approvals = required_approvals
        self.handoffs = HandoffApplier(db, required_approvals=required_approvals)
        #: the group-commit front door for a busy listener (see :mod:`conductor.handoffs`)
        self.handoff_queue = HandoffQueue(self.handoffs)
        #: what ``/conductor setup`` bound per guild
        self.guilds = GuildConfigs(db)
        self.reactions = ReactionApplier(db)
        #: seals and notes on shipped releases
        self.seals = SealRecords(db)
        #: the group-commit front door for a busy review channel
        self.reaction_queue: GroupCommit[Reaction, ReactionResult] = GroupCommit(
            self.reactions.apply, name="reaction-drainer"
        )

    # ------------------------------------------------------------------ releases

    async def open_release(
        self, guild_id: int, name: str, actor: Actor, *, on: date | None = None
    ) -> ReleaseView:
        """Open the guild's assembling release. Refused while another one is active."""
        now = utcnow()
        base = release_slug_for(name, on or now.date())
        try:
            async with self.db.write() as session:
                active = await self._active_release(session, guild_id)
                if active is not None:
                    raise self._already_active(active)
                taken = set(
                    (
                        await session.scalars(
                            select(Release.slug).where(
                                Release.guild_id == guild_id, Release.slug.startswith(base)
                            )
                        )
                    ).all()
                )
                slug, n = base, 1
                while slug in taken:  # same name again on the same day (after an abandon)
                    n += 1
                    slug = f"{base}-{n}"
                release = Release(
                    guild_id=guild_id,
                    slug=slug,
                    name=name.strip()[:80],
                    state=ReleaseState.ASSEMBLING,
                    opened_by=actor.label,
                    opened_by_id=actor.id,
                    opened_at=now,
                )
                session.add(release)
                await session.flush()
                view = release_view(release, [])
        except IntegrityError:
            # Another process won the race past our read: the partial unique index said no.
            async with self.db.read() as session:
                active = await self._active_release(session, guild_id)
            if active is None:
                raise
            raise self._already_active(active) from None
        log.info("release opened guild=%s release=%s by=%s", guild_id, view.slug, actor.label)
        return view

    async def add_task(self, guild_id: int, slug: str, actor: Actor) -> ReleaseView:
        """Attach a reviewed task to the assembling release."""
        async with self._release_write() as session:
            release = await self._require_active(session, guild_id, for_what="add a task")
            self._require_assembling(release, "Tasks can only be added")
            task = await self._require_task(session, guild_id, slug)
            if task.release_id == release.id:
                raise InvalidInput(f"Task `{task.slug}` already rides `{release.slug}`.")
            if task.state is not TaskState.REVIEWED:
                raise InvalidMove(self._not_reviewed(task))
            deps = await dependency_views(session, guild_id, [task])
            blocking = [d for d in deps[task.id] if d.blocks(release.slug)]
            if blocking:
                listed = ", ".join(f"`{d.slug}` ({d.state_label})" for d in blocking)
                raise Blocked(
                    f"Task `{task.slug}` can't join `{release.slug}`: it depends on {listed}. "
                    "Each dependency must be shipped or ride this release first."
                )
            position = await session.scalar(
                select(func.coalesce(func.max(Task.release_position), 0)).where(
                    Task.release_id == release.id
                )
            )
            await TaskFlow(task, session).fire("assemble", self._move(actor))
            task.release_id = release.id
            task.release_position = int(position or 0) + 1
            await session.flush()
            view = await self._load_release_view(session, release)
        log.info(
            "task added guild=%s release=%s task=%s by=%s", guild_id, view.slug, slug, actor.label
        )
        return view

    async def remove_task(self, guild_id: int, slug: str, actor: Actor) -> ReleaseView:
        """Detach a member from the assembling release; it goes back to reviewed."""
        async with self._release_write() as session:
            release = await self._require_active(session, guild_id, for_what="remove a task")
            self._require_assembling(release, "Tasks can only be removed")
            task = await self._require_task(session, guild_id, slug)
            if task.release_id != release.id:
                raise InvalidInput(f"Task `{task.slug}` is not on `{release.slug}`.")
            members = await self._members(session, release)
            dependents = [m.slug for m in members if task.slug in m.dependency_slugs]
            if dependents:
                listed = ", ".join(f"`{s}`" for s in dependents)
                raise Blocked(
                    f"Task `{task.slug}` can't leave `{release.slug}`: {listed} "
                    f"{'depends' if len(dependents) == 1 else 'depend'} on it. Remove "
                    f"{'it' if len(dependents) == 1 else 'them'} first."
                )
            await TaskFlow(task, session).fire("unassemble", self._move(actor))
            task.release_id = None
            task.release_position = None
            await session.flush()
            view = await self._load_release_view(session, release)
        log.info(
            "task removed guild=%s release=%s task=%s by=%s", guild_id, view.slug, slug, actor.label
        )
        return view

    async def assemble(
        self, guild_id: int, actor: Actor, *, release_slug: str | None = None
    ) -> ReleaseView:
        """Complete the assembly: assembling → assembled (needs at least one member)."""
        async with self._release_write() as session:
            release = await self._require_active(
                session, guild_id, for_what="assemble", expected=release_slug
            )
            members = await self._members(session, release)
            await ReleaseFlow(release, member_count=len(members)).fire(
                "assemble", self._move(actor)
            )
            await session.flush()
            view = release_view(release, members)
        log.info("release assembled guild=%s release=%s by=%s", guild_id, view.slug, actor.label)
        return view

    async def ship_preflight(self, guild_id: int) -> ReleaseView:
        """Read-only: the release ``ship`` would ship, or the refusal ``ship`` would give (the
        same text), so the Discord layer can refuse before it defers."""
        async with self.db.read() as session:
            release = await self._require_active(session, guild_id, for_what="ship")
            refusal = ReleaseFlow.refusal_for(release.slug, release.state, "ship")
            if refusal is not None:
                raise InvalidMove(refusal)
            return await self._load_release_view(session, release)

    async def ship(
        self, guild_id: int, actor: Actor, *, release_slug: str | None = None
    ) -> ReleaseView:
        """The state part of a ship: the release and all its members flip to shipped in one
        transaction, and the release gets the next deploy version."""
        async with self._release_write() as session:
            release = await self._require_active(
                session, guild_id, for_what="ship", expected=release_slug
            )
            members = await self._members(session, release)
            now = utcnow()
            move = self._move(actor, at=now)
            await ReleaseFlow(release, member_count=len(members)).fire("ship", move)
            last = await session.scalar(
                select(func.coalesce(func.max(Release.version), 0)).where(
                    Release.guild_id == guild_id
                )
            )
            release.version = int(last or 0) + 1
            for task in members:
                await TaskFlow(task, session).fire("ship", move)
            await session.flush()
            view = release_view(release, members)
        log.info(
            "release shipped guild=%s release=%s version=v%s members=%d by=%s",
            guild_id, view.slug, view.version, len(view.members), actor.label,
        )  # fmt: skip
        return view

    async def abandon(
        self, guild_id: int, reason: str, actor: Actor, *, release_slug: str | None = None
    ) -> ReleaseView:
        """Abandon the active release: members go back to reviewed and the slot is freed."""
        reason = reason.strip()
        if not reason:
            raise InvalidInput(
                "Abandoning needs a reason, e.g. `/release abandon reason: merge conflict`."
            )
        if len(reason) > MAX_REASON:
            raise InvalidInput(
                f"That reason is too long ({len(reason)} characters; at most {MAX_REASON})."
            )
        async with self._release_write() as session:
            release = await self._require_active(
                session, guild_id, for_what="abandon", expected=release_slug
            )
            members = await self._members(session, release)
            move = self._move(actor)
            await ReleaseFlow(release, member_count=len(members)).fire("abandon", move)
            release.abandon_reason = reason
            for task in members:
                await TaskFlow(task, session).fire("unassemble", move)
                task.release_id = None
                task.release_position = None
            await session.flush()
            view = release_view(release, [])
        log.info("release abandoned guild=%s release=%s by=%s", guild_id, view.slug, actor.label)
        return view

    async def set_notes_thread(self, guild_id: int, release_slug: str, thread_id: int) -> None:
        async with self.db.write() as session:
            release = await self._require_release(session, guild_id, release_slug)
            release.notes_thread_id = thread_id

    # ------------------------------------------------------------------ handoffs

    async def apply_handoff(self, message: IncomingMessage) -> HandoffResult:
        """Store one message raw, then parse and apply it (see :mod:`conductor.handoffs`).
        Idempotent per message id: the second time changes nothing."""
        [result] = await self.handoffs.apply([message])
        if isinstance(result, Exception):
            raise result
        return result

    async def last_handoff_message_id(self, guild_id: int, channel_id: int) -> int | None:
        """The newest message stored from a handoff channel (catch-up after downtime reads
        Discord's history after it)."""
        async with self.db.read() as session:
            return await session.scalar(
                select(func.max(HandoffMessage.message_id)).where(
                    HandoffMessage.guild_id == guild_id, HandoffMessage.channel_id == channel_id
                )
            )

    # ------------------------------------------------------------------ reviews

    async def attach_review_message(
        self, request_id: int, channel_id: int, message_id: int
    ) -> None:
        """Remember which Discord message carries a review request (reactions arrive on it)."""
        async with self.db.write() as session:
            request = await session.get(ReviewRequest, request_id)
            if request is None:
                raise NotFound(f"No review request #{request_id}.")
            request.channel_id, request.message_id = channel_id, message_id

    async def record_approval(
        self, guild_id: int, message_id: int, reactor: Reactor
    ) -> ReactionResult:
        """A ✅ on a review message. At the required count the task becomes reviewed, once."""
        return await self.reactions.apply_one(Reaction(APPROVE, guild_id, message_id, reactor))

    async def withdraw_approval(
        self, guild_id: int, message_id: int, reactor: Reactor
    ) -> ReactionResult:
        """A ✅ removed. Before the threshold it takes the approval back; after, nothing."""
        return await self.reactions.apply_one(Reaction(WITHDRAW, guild_id, message_id, reactor))

    async def request_changes(
        self, guild_id: int, message_id: int, reactor: Reactor
    ) -> ReactionResult:
        """A ❌ from an eligible reviewer: the task goes back to building, approvals reset."""
        return await self.reactions.apply_one(Reaction(REJECT, guild_id, message_id, reactor))

    async def review(self, request_id: int) -> ReviewView:
        async with self.db.read() as session:
            request = await session.get(
                ReviewRequest,
                request_id,
                options=[selectinload(ReviewRequest.approvals), selectinload(ReviewRequest.task)],
            )
            if request is None:
                raise NotFound(f"No review request #{request_id}.")
            return review_view(request, request.task)

    async def open_reviews(self, guild_id: int) -> tuple[ReviewView, ...]:
        """Review requests still waiting for approvals (the Discord layer reconciles them)."""
        async with self.db.read() as session:
            requests = (
                await session.scalars(
                    select(ReviewRequest)
                    .where(
                        ReviewRequest.guild_id == guild_id,
                        ReviewRequest.status == ReviewStatus.OPEN,
                    )
                    .options(
                        selectinload(ReviewRequest.approvals), selectinload(ReviewRequest.task)
                    )
                    .order_by(ReviewRequest.id)
                )
            ).all()
            return tuple(review_view(r, r.task) for r in requests)

    # ------------------------------------------------------------------ queries

    async def status(self, guild_id: int) -> StatusView:
        async with self.db.read() as session:
            active = await self._active_release(session, guild_id)
            active_view = await self._load_release_view(session, active) if active else None
            shipped = await session.scalar(
                select(Release)
                .where(Release.guild_id == guild_id, Release.state == ReleaseState.SHIPPED)
                .order_by(Release.version.desc())
                .limit(1)
            )
            shipped_view = await self._load_release_view(session, shipped) if shipped else None
        return StatusView(active_view, self._blockers(active_view), shipped_view)

    async def release(self, guild_id: int, slug: str) -> ReleaseView:
        async with self.db.read() as session:
            return await self._load_release_view(
                session, await self._require_release(session, guild_id, slug)
            )

    async def recent_releases(self, guild_id: int, limit: int = 5) -> tuple[ReleaseView, ...]:
        """The newest releases, active first, for the board."""
        async with self.db.read() as session:
            rows = (
                await session.scalars(
                    select(Release)
                    .where(Release.guild_id == guild_id)
                    .order_by(Release.id.desc())
                    .limit(limit)
                )
            ).all()
            return tuple([await self._load_release_view(session, r) for r in rows])

    async def list_tasks(
        self, guild_id: int, state: TaskState | None = None
    ) -> tuple[TaskView, ...]:
        async with self.db.read() as session:
            query = (
                select(Task)
                .where(Task.guild_id == guild_id)
                .options(selectinload(Task.dependencies), selectinload(Task.release))
                .order_by(Task.updated_at.desc(), Task.id.desc())
            )
            if state is not None:
                query = query.where(Task.state == state)
            tasks = list((await session.scalars(query)).all())
            deps = await dependency_views(session, guild_id, tasks)
            return tuple(task_view(t, deps[t.id]) for t in tasks)

    async def task_card(self, guild_id: int, slug: str) -> TaskCard:
        async with self.db.read() as session:
            task = await self._require_task(session, guild_id, slug)
            deps = await dependency_views(session, guild_id, [task])
            request = await session.scalar(
                select(ReviewRequest)
                .where(ReviewRequest.task_id == task.id)
                .order_by(ReviewRequest.round.desc())
                .limit(1)
                .options(selectinload(ReviewRequest.approvals))
            )
            notes = (
                await session.execute(
                    select(HandoffMessage, StageEvent.to_state)
                    .outerjoin(
                        StageEvent, StageEvent.handoff_message_id == HandoffMessage.message_id
                    )
                    .where(HandoffMessage.task_id == task.id, HandoffMessage.note.is_not(None))
                    .order_by(HandoffMessage.id)
                )
            ).all()
            return TaskCard(
                task=task_view(task, deps[task.id]),
                review=review_view(request, task) if request else None,
                timeline=await self._timeline(session, task),
                notes=tuple(
                    NoteView(
                        at=h.received_at, author_name=h.author_name, to_state=to, note=h.note or ""
                    )
                    for h, to in notes
                ),
                metadata=dict(task.extra or {}),
            )

    async def timeline(self, guild_id: int, slug: str) -> tuple[StageView, ...]:
        async with self.db.read() as session:
            return await self._timeline(session, await self._require_task(session, guild_id, slug))

    # ------------------------------------------------------------------ helpers

    def _release_write(self) -> _ReleaseWrite:
        return _ReleaseWrite(self.db)

    @staticmethod
    def _move(actor: Actor, *, at: datetime | None = None) -> Move:
        return Move(actor=actor.label, actor_id=actor.id, at=at)

    @staticmethod
    async def _active_release(session: Session, guild_id: int) -> Release | None:
        return await session.scalar(
            select(Release).where(
                Release.guild_id == guild_id, Release.state.in_(ACTIVE_RELEASE_STATES)
            )
        )

    @staticmethod
    def _already_active(release: Release) -> ReleaseActive:
        return ReleaseActive(
            f"Release `{release.slug}` is already active ({release.state.value}), opened by "
            f"{release.opened_by} on {_when(release.opened_at)}. Ship or abandon it before opening another."
        )

    async def _require_active(
        self, session: Session, guild_id: int, *, for_what: str, expected: str | None = None
    ) -> Release:
        release = await self._active_release(session, guild_id)
        if expected is not None and (release is None or release.slug != expected):
            # The operator acted on a release that is no longer the active one.
            gone = await session.scalar(
                select(Release).where(Release.guild_id == guild_id, Release.slug == expected)
            )
            if gone is None:
                raise NotFound(f"No release `{expected}`.")
            raise ReleaseChanged(self._changed(gone))
        if release is None:
            raise NotFound(
                f"No release is active, so there is nothing to {for_what}. Start one with `/release open`."
            )
        return release

    @staticmethod
    def _changed(release: Release) -> str:
        state = release.state
        if state is ReleaseState.SHIPPED and release.shipped_at:
            what = f"it was shipped by {release.shipped_by} at {_when(release.shipped_at)}"
        elif state is ReleaseState.ABANDONED and release.abandoned_at:
            what = f"it was abandoned by {release.abandoned_by} at {_when(release.abandoned_at)}"
        else:
            what = f"it is now {state.value}"
        return f"Release `{release.slug}` changed under you: {what}. Nothing was done."

    @staticmethod
    def _require_assembling(release: Release, doing: str) -> None:
        if release.state is not ReleaseState.ASSEMBLING:
            raise InvalidMove(
                f"Release `{release.slug}` is {release.state.value}. {doing} while it is assembling "
                "(abandon it and open a new one to change its members)."
            )

    async def _require_release(self, session: Session, guild_id: int, slug: str) -> Release:
        release = await session.scalar(
            select(Release).where(Release.guild_id == guild_id, Release.slug == slug)
        )
        if release is None:
            raise NotFound(
                f"No release `{slug}`. `/release status` shows the active and last shipped ones."
            )
        return release

    @staticmethod
    async def _task(
        session: Session, guild_id: int, slug: str, *, with_release: bool = True
    ) -> Task | None:
        # One query: the task with its (few) dependencies joined in.
        query = (
            select(Task)
            .where(Task.guild_id == guild_id, Task.slug == slug.strip().lower())
            .options(joinedload(Task.dependencies))
        )
        if with_release:
            query = query.options(joinedload(Task.release))
        return (await session.scalars(query)).unique().one_or_none()

    async def _require_task(self, session: Session, guild_id: int, slug: str) -> Task:
        task = await self._task(session, guild_id, slug)
        if task is None:
            raise NotFound(
                f"No task `{slug.strip()[:63]}`. Tasks appear with their first handoff; `/task list` shows them."
            )
        return task

    def _not_reviewed(self, task: Task) -> str:
        text = f"Task `{task.slug}` is {task.state.value}; only reviewed tasks can join a release."
        if task.state is TaskState.SUBMITTED:
            text += " It is waiting for review approvals."
        elif task.state is TaskState.ASSEMBLED:
            text += " It already rides another release."
        return text

    @staticmethod
    async def _members(session: Session, release: Release) -> list[Task]:
        return await release_members(session, release)

    @staticmethod
    async def _load_release_view(session: Session, release: Release) -> ReleaseView:
        return await load_release_view(session, release)

    @staticmethod
    def _blockers(active: ReleaseView | None) -> tuple[str, ...]:
        if active is None:
            return ()
        if active.state is ReleaseState.ASSEMBLING and not active.members:
            return ("no members yet: `/release add` a reviewed task",)
        if active.state is ReleaseState.ASSEMBLING:
            return ("still assembling: `/release assemble` when the members are all aboard",)
        return ()

    @staticmethod
    async def _timeline(session: Session, task: Task) -> tuple[StageView, ...]:
        events = await session.scalars(
            select(StageEvent).where(StageEvent.task_id == task.id).order_by(StageEvent.id)
        )
        return tuple(stage_view(e) for e in events)


class _ReleaseWrite:
    """``Database.write`` for release commands: a concurrent change caught by the optimistic
    lock (PostgreSQL, or any path past the SQLite write lock) becomes a clear refusal."""

    def __init__(self, db: Database) -> None:
        self._cm = db.write()

    async def __aenter__(self) -> Session:
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: object) -> bool | None:
        try:
            return await self._cm.__aexit__(*exc)  # type: ignore[arg-type]
        except StaleDataError:
            raise ReleaseChanged(
                "The release changed under you; nothing was done. Check `/release status`."
            ) from None


__all__ = ["ReleaseService", "release_slug_for"]
