"""The release service: every change to a release and its members goes through here.

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
from sqlalchemy.orm.exc import StaleDataError

from conductor.errors import (
    Blocked,
    HeldTrain,
    InvalidInput,
    InvalidMove,
    Locked,
    NotFound,
    ReleaseActive,
    ReleaseChanged,
)
from conductor.machines import Move, ReleaseFlow, TaskFlow
from conductor.queries import (
    active_release,
    current_lock,
    dependency_views,
    distinct_values,
    half_rollback,
    held_by,
    last_shipped,
    load_release_view,
    load_release_views,
    lock_view,
    release_members,
    release_view,
    require_release,
    require_task,
    running_run,
    standing,
)
from conductor.releases.git import RcBuild
from conductor.releases.record import running
from conductor.releases.sandbox import CommandRun
from conductor.sizing import SizingConfig, size_shipped, with_sizing
from conductor.states import TRAIN_HOLDING_SEALS, RcTestsStatus, ReleaseState, RunKind, TaskState
from conductor.text import half_rollback_text, hold_text, locked_refusal
from conductor.text import utc as _when
from conductor.views import (
    Actor,
    BoardView,
    RedeployView,
    ReleaseView,
    ShippedView,
    StatusView,
)
from store.db import Session
from store.models import Release, ReleaseSeal, Run, Task
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

MAX_RELEASE_NAME = 60
MAX_REASON = 500
#: ``/release history``: how many releases by default, and at most
HISTORY_DEFAULT = 10
HISTORY_MAX = 25
#: the newest releases the deployments board reads by default
BOARD_RECENT = 6
_NAME_JUNK = re.compile(r"[^a-z0-9]+")
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}-")


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


async def next_version(session: Session, guild_id: int) -> int:
    """The guild's next deploy counter: one past the highest version any release got."""
    last = await session.scalar(
        select(func.coalesce(func.max(Release.version), 0)).where(Release.guild_id == guild_id)
    )
    return int(last or 0) + 1


class Releases:
    """The release train: open, add, remove, assemble, the flip, abandon, and what stands."""

    def __init__(self, db: Database, sizing: SizingConfig | None = None) -> None:
        self.db = db
        #: ``[sizing]``: how a member's actual size is measured when it ships
        self.sizing = sizing or SizingConfig()

    # ------------------------------------------------------------------ releases

    async def open(
        self,
        guild_id: int,
        name: str,
        actor: Actor,
        *,
        on: date | None = None,
        over_held: str | None = None,
    ) -> ReleaseView:
        """Open the guild's assembling release. Refused while the train is locked and while
        another release is active. While the train is held (production's last ship red or
        error, neither re-sealed green nor rolled back; or a rollback of it stopped half way,
        main reverted), it opens only over that release named in ``over_held`` (the operator
        confirmed it; who and when, and the revert main had, are recorded on the new
        release); else :class:`HeldTrain` says what holds it."""
        now = utcnow()
        base = release_slug_for(name, on or now.date())
        try:
            async with self.db.write() as session:
                await self._refuse_locked(session, guild_id, "open a release", actor)
                active = await active_release(session, guild_id)
                if active is not None:
                    raise self._already_active(active)
                held = await held_by(session, guild_id)
                if held is not None and held.slug != over_held:
                    first = (
                        "finish the rollback first (`/release rollback` again)"
                        if held.half is not None
                        else "`/seal` it green again, or roll it back, first"
                    )
                    raise HeldTrain(
                        hold_text(held) + "\nOpening a release over it needs an operator's "
                        f"confirmation (`/release open` asks for it); or {first}.",
                        held,
                    )
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
                if held is not None:
                    release.held_over_slug = held.slug
                    release.held_over_seal = held.release.seal_status if held.sealed else None
                    release.held_over_revert = held.half.revert if held.half else None
                    release.held_confirmed_by, release.held_confirmed_by_id = actor.label, actor.id
                    release.held_confirmed_at = now
                session.add(release)
                await session.flush()
                view = release_view(release, [])
        except IntegrityError:
            # Another process won the race past our read: the partial unique index said no.
            async with self.db.read() as session:
                active = await active_release(session, guild_id)
            if active is None:
                raise
            raise self._already_active(active) from None
        log.info(
            "release opened guild=%s release=%s by=%s%s", guild_id, view.slug, actor.label,
            f" over_held={view.held_over_slug}" if view.held_over_slug else "",
        )  # fmt: skip
        return view

    async def add_task(self, guild_id: int, slug: str, actor: Actor) -> ReleaseView:
        """Attach a reviewed task to the assembling release."""
        async with self._release_write() as session:
            release = await self._require_active(session, guild_id, for_what="add a task")
            self._require_assembling(release, "Tasks can only be added")
            task = await require_task(session, guild_id, slug)
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
            view = await load_release_view(session, release)
        log.info(
            "task added guild=%s release=%s task=%s by=%s", guild_id, view.slug, slug, actor.label
        )
        return view

    async def remove_task(self, guild_id: int, slug: str, actor: Actor) -> ReleaseView:
        """Detach a member from the assembling release; it goes back to reviewed."""
        async with self._release_write() as session:
            release = await self._require_active(session, guild_id, for_what="remove a task")
            self._require_assembling(release, "Tasks can only be removed")
            task = await require_task(session, guild_id, slug)
            if task.release_id != release.id:
                raise InvalidInput(f"Task `{task.slug}` is not on `{release.slug}`.")
            members = await release_members(session, release)
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
            view = await load_release_view(session, release)
        log.info(
            "task removed guild=%s release=%s task=%s by=%s", guild_id, view.slug, slug, actor.label
        )
        return view

    async def assembly_preflight(
        self, guild_id: int, *, release_slug: str | None = None
    ) -> ReleaseView:
        """Read-only: the release ``assemble`` would assemble (members in merge order), or the
        refusal it would give, so the slow part (git, the tests) starts only when it can land."""
        async with self.db.read() as session:
            release = await self._require_active(
                session, guild_id, for_what="assemble", expected=release_slug
            )
            refusal = ReleaseFlow.refusal_for(release.slug, release.state, "assemble")
            if refusal is not None:
                raise InvalidMove(refusal)
            view = await load_release_view(session, release)
            if not view.members:
                raise InvalidMove(ReleaseFlow.no_members(release.slug))
            return view

    async def assemble(
        self,
        guild_id: int,
        actor: Actor,
        *,
        release_slug: str | None = None,
        rc: RcBuild | None = None,
        tests: CommandRun | None = None,
        members: tuple[str, ...] | None = None,
    ) -> ReleaseView:
        """Complete the assembly: assembling → assembled (needs at least one member). With
        ``rc``, the RC branch built from ``members`` (which must still be the members, in this
        order) is stored; with failed ``tests``, their result is stored and the release stays
        assembling."""
        async with self._release_write() as session:
            release = await self._require_active(
                session, guild_id, for_what="assemble", expected=release_slug
            )
            rows = await release_members(session, release)
            if members is not None and tuple(t.slug for t in rows) != members:
                raise ReleaseChanged(
                    f"The members of `{release.slug}` changed while it was being assembled; "
                    "nothing was assembled. Run `/release assemble` again."
                )
            if rc is not None:
                release.rc_branch, release.rc_base, release.rc_head = rc.branch, rc.base, rc.head
                release.rc_merges = dict(rc.merges)
            if tests is not None:
                release.rc_tests_status = (
                    RcTestsStatus.PASSED if tests.passed else RcTestsStatus.FAILED
                )
                release.rc_tests_at = utcnow()
                release.rc_tests_duration_ms = tests.duration_ms
                release.rc_tests_tail = tests.tail
                release.rc_tests_log = tests.log
            if tests is None or tests.passed:
                await ReleaseFlow(release, member_count=len(rows)).fire(
                    "assemble", self._move(actor)
                )
            await session.flush()
            view = release_view(release, rows)
        log.info(
            "release assembly guild=%s release=%s state=%s rc=%s by=%s", guild_id, view.slug,
            view.state.value, (view.rc_head or "-")[:12], actor.label,
        )  # fmt: skip
        return view

    async def shippable(
        self, session: Session, guild_id: int, actor: Actor | None, expected: str | None = None
    ) -> tuple[Release, int]:
        """The ship's admission, in the caller's unit of work: the active release, assembled,
        with the next version, or the refusal (the lock first: it stops its holder too; the
        release ``expected`` gone; the wrong state; a rollback stopped half way that it was
        not opened over)."""
        await self._refuse_locked(session, guild_id, "ship", actor)
        release = await self._require_active(session, guild_id, for_what="ship", expected=expected)
        refusal = ReleaseFlow.refusal_for(release.slug, release.state, "ship")
        if refusal is not None:
            raise InvalidMove(refusal)
        await self._refuse_half_rollback(session, guild_id, release)
        return release, await next_version(session, guild_id)

    @staticmethod
    async def _refuse_half_rollback(session: Session, guild_id: int, release: Release) -> None:
        """A release opened before a rollback stopped half way (main reverted, production's
        release still shipped) does not ship past it unawares: opened over it (confirmed) it
        does; else the refusal says why and what to do."""
        shipped = await last_shipped(session, guild_id)
        half = await half_rollback(session, shipped) if shipped is not None else None
        if half is None or release.held_over_revert == half.revert:
            return
        what = f"`{half.release_slug}`{f' v{half.version}' if half.version else ''}"
        raise InvalidMove(
            f"Can't ship `{release.slug}`: {half_rollback_text(half)} `{release.slug}` was "
            f"opened before that, so it would ship `main` without {what}'s changes while "
            f"{what} still reads shipped. Finish the rollback first (`/release rollback` "
            f"again), or abandon `{release.slug}` and open a new release over {what} "
            "(`/release open` asks to confirm)."
        )

    async def ship(
        self,
        guild_id: int,
        actor: Actor,
        *,
        release_slug: str | None = None,
        version: int | None = None,
        merge_sha: str | None = None,
    ) -> ReleaseView:
        """The state part of a ship: the release and all its members flip to shipped in one
        transaction (each member's actual size measured by ``[sizing]`` in it too), and the
        release gets its deploy version (``version``, reserved by its
        ship run, or the next one) and main's new commit (``merge_sha``)."""
        async with self._release_write() as session:
            release = await self._require_active(
                session, guild_id, for_what="ship", expected=release_slug
            )
            members = await release_members(session, release)
            now = utcnow()
            move = self._move(actor, at=now)
            await ReleaseFlow(release, member_count=len(members)).fire("ship", move)
            release.version = version or await next_version(session, guild_id)
            if merge_sha is not None:
                release.merge_sha = merge_sha
            await TaskFlow.move_all(members, "ship", move, session)
            await size_shipped(session, members, self.sizing)
            await session.flush()
            view = release_view(release, members)
        log.info(
            "release shipped guild=%s release=%s version=v%s members=%d by=%s",
            guild_id, view.slug, view.version, len(view.members), actor.label,
        )  # fmt: skip
        return view

    async def with_sizing(self, guild_id: int, release: ReleaseView) -> ReleaseView:
        """``release`` with its members' sizing (revealed for those shipped): the notes'."""
        async with self.db.read() as session:
            return await with_sizing(session, guild_id, release)

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
            running = await running_run(session, guild_id, release_id=release.id)
            if running is not None:
                raise InvalidMove(
                    f"Release `{release.slug}` is being shipped (started by {running.started_by} "
                    f"at {_when(running.started_at)}); abandon it once the ship has ended."
                )
            members = await release_members(session, release)
            move = self._move(actor)
            await ReleaseFlow(release, member_count=len(members)).fire("abandon", move)
            release.abandon_reason = reason
            await TaskFlow.move_all(members, "unassemble", move, session)
            for task in members:
                task.release_id = None
                task.release_position = None
            await session.flush()
            view = release_view(release, [])
        log.info("release abandoned guild=%s release=%s by=%s", guild_id, view.slug, actor.label)
        return view

    async def roll_back(
        self, guild_id: int, release_slug: str, actor: Actor, *, reason: str
    ) -> tuple[ReleaseView, tuple[str, ...]]:
        """The state part of a rollback: the release (which must still be the last shipped
        one) becomes rolled_back with who, when and why, and its members go back to reviewed
        (each with the move on its timeline), free to ride another release; one transaction.
        Returns the release and the slugs of the members sent back, in merge order."""
        async with self._release_write() as session:
            release = await require_release(session, guild_id, release_slug)
            last = await last_shipped(session, guild_id)
            if release.state is ReleaseState.SHIPPED and last is not None and last.id != release.id:
                raise InvalidMove(
                    f"Release `{release.slug}` is not what production runs: `{last.slug}` "
                    f"v{last.version} shipped after it. Only the last shipped release can be "
                    "rolled back."
                )
            members = await release_members(session, release)
            move = self._move(actor)
            await ReleaseFlow(release, member_count=len(members)).fire("roll_back", move)
            release.rollback_reason = reason
            await TaskFlow.move_all(members, "roll_back", move, session)
            for task in members:
                task.release_id = None
                task.release_position = None
            await session.flush()
            view = release_view(release, [])
            sent_back = tuple(task.slug for task in members)
        log.info(
            "release rolled back guild=%s release=%s members=%d by=%s",
            guild_id, view.slug, len(sent_back), actor.label,
        )  # fmt: skip
        return view, sent_back

    async def set_notes_thread(self, guild_id: int, release_slug: str, thread_id: int) -> None:
        async with self.db.write() as session:
            release = await require_release(session, guild_id, release_slug)
            release.notes_thread_id = thread_id

    # ------------------------------------------------------------------ queries

    async def status(self, guild_id: int) -> StatusView:
        """``/release status``: :meth:`_status` with both releases' cost."""
        async with self.db.read() as session:
            return await self._status(session, guild_id, spend=True)

    async def _status(self, session: Session, guild_id: int, *, spend: bool = False) -> StatusView:
        """Three queries whatever the data (:func:`standing`, then both releases' members and
        their dependencies), a fourth only after a rollback of the last shipped release ended
        failed or interrupted; ``spend``: one more, both releases' cost (every member's
        handoff moves, whatever their number)."""
        now = await standing(session, guild_id)
        active, shipped = now.active, now.shipped
        views = iter(
            await load_release_views(session, [r for r in (active, shipped) if r], spend=spend)
        )
        active_view = next(views) if active else None
        shipped_view = next(views) if shipped else None
        return StatusView(
            active_view,
            self._blockers(active_view),
            shipped_view,
            lock_view(now.lock) if now.lock is not None else None,
            held=shipped is not None and shipped.seal_status in TRAIN_HOLDING_SEALS,
            half=await half_rollback(session, shipped)
            if shipped is not None and now.rollback_ended
            else None,
        )

    async def board(self, guild_id: int, recent: int = BOARD_RECENT) -> BoardView:
        """The deployments board: the status, the ``recent`` newest releases and the run in
        progress, read in one snapshot (a release is never shown both active and shipped)."""
        async with self.db.read() as session:
            return BoardView(
                await self._status(session, guild_id),
                await self._recent(session, guild_id, recent),
                await running(session, guild_id),
            )

    async def guilds(self) -> tuple[int, ...]:
        """The guilds with a release or a task here, in order."""
        async with self.db.read() as session:
            releases = await distinct_values(session, Release.guild_id)
            tasks = await distinct_values(session, Task.guild_id)
            return tuple(sorted(releases | tasks))

    async def history(self, guild_id: int, count: int = HISTORY_DEFAULT) -> tuple[ShippedView, ...]:
        """The last ``count`` shipped releases, rolled back or not, newest first, each with
        how many seals it got; the one production runs is marked."""
        if not 1 <= count <= HISTORY_MAX:
            raise InvalidInput(
                f"`count` is how many shipped releases to list: 1 to {HISTORY_MAX} "
                f"(default {HISTORY_DEFAULT}); {count} is out of range."
            )
        async with self.db.read() as session:
            rows = (
                await session.scalars(
                    select(Release)
                    .where(
                        Release.guild_id == guild_id,
                        Release.state.in_((ReleaseState.SHIPPED, ReleaseState.ROLLED_BACK)),
                    )
                    .order_by(Release.version.desc())
                    .limit(count)
                )
            ).all()
            seals: dict[int, int] = {}
            if rows:
                counted = await session.execute(
                    select(ReleaseSeal.release_id, func.count())
                    .where(ReleaseSeal.release_id.in_([r.id for r in rows]))
                    .group_by(ReleaseSeal.release_id)
                )
                seals = {release_id: int(n) for release_id, n in counted}
            redeploys: dict[int, list[RedeployView]] = {}
            if rows:
                runs = await session.scalars(
                    select(Run)
                    .where(Run.release_id.in_([r.id for r in rows]), Run.kind == RunKind.REDEPLOY)
                    .order_by(Run.id)
                )
                for run in runs:
                    redeploys.setdefault(run.release_id, []).append(
                        RedeployView(run.started_by, run.started_at, run.reason, run.status.value)
                    )
            production = await last_shipped(session, guild_id)
        return tuple(
            ShippedView(
                release_view(row, []),
                seals.get(row.id, 0),
                in_production=production is not None and row.id == production.id,
                redeploys=tuple(redeploys.get(row.id, ())),
            )
            for row in rows
        )

    async def get(self, guild_id: int, slug: str, *, notes: bool = False) -> ReleaseView:
        """The release ``slug``; ``notes``: with what its notes say beside it (its cost, each
        member's last note), two more queries."""
        async with self.db.read() as session:
            release = await require_release(session, guild_id, slug)
            return await load_release_view(session, release, spend=notes, notes=notes)

    async def recent(self, guild_id: int, limit: int = 5) -> tuple[ReleaseView, ...]:
        """The newest releases, active first, for the board."""
        async with self.db.read() as session:
            return await self._recent(session, guild_id, limit)

    @staticmethod
    async def _recent(session: Session, guild_id: int, limit: int) -> tuple[ReleaseView, ...]:
        rows = (
            await session.scalars(
                select(Release)
                .where(Release.guild_id == guild_id)
                .order_by(Release.id.desc())
                .limit(limit)
            )
        ).all()
        return tuple(await load_release_views(session, rows))

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def _refuse_locked(
        session: Session, guild_id: int, doing: str, actor: Actor | None
    ) -> None:
        """:class:`Locked` while the guild's release lock stands (for its holder too: the lock
        stops the train until ``/release unlock``)."""
        row = await current_lock(session, guild_id)
        if row is None:
            return
        lock = lock_view(row)
        yours = actor is not None and lock.is_holder(actor)
        raise Locked(locked_refusal(lock, doing, yours=yours, now=utcnow()), lock)

    def _release_write(self) -> _ReleaseWrite:
        return _ReleaseWrite(self.db)

    @staticmethod
    def _move(actor: Actor, *, at: datetime | None = None) -> Move:
        return Move(actor=actor.label, actor_id=actor.id, at=at)

    @staticmethod
    def _already_active(release: Release) -> ReleaseActive:
        return ReleaseActive(
            f"Release `{release.slug}` is already active ({release.state.value}), opened by "
            f"{release.opened_by} on {_when(release.opened_at)}. Ship or abandon it before opening another."
        )

    async def _require_active(
        self, session: Session, guild_id: int, *, for_what: str, expected: str | None = None
    ) -> Release:
        release = await active_release(session, guild_id)
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

    def _not_reviewed(self, task: Task) -> str:
        text = f"Task `{task.slug}` is {task.state.value}; only reviewed tasks can join a release."
        if task.state is TaskState.SUBMITTED:
            text += " It is waiting for review approvals."
        elif task.state is TaskState.ASSEMBLED:
            text += " It already rides another release."
        return text

    @staticmethod
    def _blockers(active: ReleaseView | None) -> tuple[str, ...]:
        if active is None:
            return ()
        if active.state is ReleaseState.ASSEMBLING and not active.members:
            return ("no members yet: `/release add` a reviewed task",)
        if active.state is ReleaseState.ASSEMBLING:
            return ("still assembling: `/release assemble` when the members are all aboard",)
        return ()


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


__all__ = ["Releases", "release_slug_for"]
