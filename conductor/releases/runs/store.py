"""Runs in the database: one row per run (a ship, a rollback, a redeploy), one per step, and
the lease that lets one process at a time drive a run.

A process *claims* a run by writing itself as the owner with an expiry, and only while the
run is unowned, its own, or its lease has run out; it renews the lease while it works. Every
write of a step checks, in the same transaction, that the process still owns the run (a
fence): a process that stalled past its lease and lost the run to another can write nothing
more. The database decides, so two processes on one file never run the same step twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import selectinload

from conductor.errors import ConductorError
from conductor.states import (
    ENDING_STEPS,
    FINISHED_STEPS,
    RunKind,
    RunStatus,
    StepName,
    StepStatus,
)
from conductor.views import Actor
from store.models import Release, Run, RunStep
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0


class LeaseLost(ConductorError):
    """Another process holds the run now; this one must stop writing."""


class RunRunning(ConductorError):
    """Another run of the guild is running: one at a time, whatever the kinds."""


@dataclass(frozen=True, slots=True)
class StepView:
    name: StepName
    status: StepStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    guild_id: int
    release_slug: str
    status: RunStatus
    version: int
    started_by: str
    started_by_id: int | None
    started_at: datetime
    steps: tuple[StepView, ...]
    finished_at: datetime | None = None
    error: str | None = None
    kind: RunKind = RunKind.SHIP
    #: a rollback's: the version production runs again after it (None: none before it)
    restores_version: int | None = None
    #: a rollback's or a redeploy's: why, in the operator's words
    reason: str | None = None
    #: the notice of a failed or interrupted run: its sending began, and it was sent
    notice_at: datetime | None = None
    told_at: datetime | None = None

    def step(self, name: StepName) -> StepView:
        return next(s for s in self.steps if s.name == name)

    @property
    def tag(self) -> str:
        """How the run is named in its messages (``run 12``), so a message found in the
        thread after a crash is this run's, not an earlier run's of the same release."""
        return f"run {self.id}"

    @property
    def ended_by(self) -> StepView | None:
        """The step that failed or was interrupted, ending the run (None: none did)."""
        return next((s for s in self.steps if s.status in ENDING_STEPS), None)

    @property
    def left(self) -> tuple[StepView, ...]:
        """The steps not finished (not done, not skipped), in order."""
        return tuple(s for s in self.steps if s.status not in FINISHED_STEPS)

    @property
    def owes_notice(self) -> bool:
        """Ended failed or interrupted, its notice not sent yet."""
        return self.status in (RunStatus.FAILED, RunStatus.INTERRUPTED) and self.told_at is None

    @property
    def actor(self) -> Actor:
        return Actor(self.started_by, self.started_by_id)


def run_view(run: Run, release_slug: str) -> RunView:
    steps = sorted(run.steps, key=lambda s: s.id)  # made in the kind's order
    return RunView(
        id=run.id,
        guild_id=run.guild_id,
        release_slug=release_slug,
        status=run.status,
        version=run.version,
        started_by=run.started_by,
        started_by_id=run.started_by_id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
        kind=run.kind,
        restores_version=run.restores_version,
        reason=run.reason,
        notice_at=run.notice_at,
        told_at=run.told_at,
        steps=tuple(
            StepView(
                name=s.name,  # type: ignore[arg-type]  # only ever written from a kind's steps
                status=s.status,
                started_at=s.started_at,
                finished_at=s.finished_at,
                outcome=dict(s.outcome or {}),
            )
            for s in steps
        ),
    )


def process_identity() -> str:
    """This process, as an owner of runs: host, pid and a random part (pids are reused)."""
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _host() -> str:
    return socket.gethostname()[:60]


def owner_is_gone(owner: str | None) -> bool:
    """Whether ``owner`` (a :func:`process_identity`) names a process of this host that no
    longer runs (killed, crashed: its lease cannot be renewed any more). A restarted bot then
    takes the run up at once instead of waiting out the dead process's lease.

    Anything uncertain counts as alive, so the lease is waited out as before: another host,
    an owner in another form, a pid that exists (also a reused one). Even a wrong "gone"
    (two hosts with one name sharing a database) runs no step twice: the fence on every
    write stops the process that lost the run."""
    if not owner:
        return False
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != _host() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's): alive
    try:  # a zombie (killed, not yet reaped by its parent) runs nothing either
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class Runs:
    """The runs of one database, as one process sees them: ``owner`` names this process in
    the lease of the runs it holds."""

    def __init__(
        self, db: Database, *, owner: str | None = None, lease_s: float = DEFAULT_LEASE_S
    ) -> None:
        self.db = db
        self.owner = owner or process_identity()
        self.lease_s = lease_s
        #: runs this process let go of itself (ended, told): a failing renewal is no takeover
        self.let_go: set[int] = set()

    def _until(self) -> datetime:
        return utcnow() + timedelta(seconds=self.lease_s)

    async def open(
        self,
        session: Any,
        release: Release,
        kind: RunKind,
        steps: Sequence[StepName],
        *,
        version: int,
        actor: Actor,
        restores_version: int | None = None,
        reason: str | None = None,
    ) -> RunView:
        """Add a running run of ``release`` held by this process, its ``steps`` pending, in the
        caller's unit of work (which has admitted it). The partial unique index refuses a
        second running run of the guild at the flush (``IntegrityError``)."""
        run = Run(
            guild_id=release.guild_id,
            release_id=release.id,
            kind=kind,
            status=RunStatus.RUNNING,
            version=version,
            restores_version=restores_version,
            reason=reason,
            started_by=actor.label,
            started_by_id=actor.id,
            started_at=utcnow(),
            owner=self.owner,
            lease_until=self._until(),
            steps=[RunStep(name=n, status=StepStatus.PENDING) for n in steps],
        )
        session.add(run)
        await session.flush()
        return run_view(run, release.slug)

    async def claim(self, run_id: int) -> bool:
        """Take the run (a running one, or one that still owes its notice) if nobody holds it
        (its lease ran out, or its owner was a process of this host that is gone) or this
        process already does."""
        now = utcnow()
        async with self.db.write() as session:
            holder = await session.scalar(select(Run.owner).where(Run.id == run_id))
            free = (Run.owner.is_(None)) | (Run.owner == self.owner) | (Run.lease_until < now)
            if holder is not None and holder != self.owner and owner_is_gone(holder):
                log.info("run %s: its owner %s is gone; taking it up now", run_id, holder)
                free = free | (Run.owner == holder)
            result = await session.execute(
                update(Run)
                .where(Run.id == run_id, _unfinished(), free)
                .values(owner=self.owner, lease_until=self._until())
                .execution_options(synchronize_session=False)
            )
            claimed = bool(getattr(result, "rowcount", 0))
        if claimed:
            self.let_go.discard(run_id)
            log.info("run %s claimed by %s", run_id, self.owner)
        return claimed

    async def renew(self, run_id: int) -> bool:
        """Extend this process's lease; False when the run is no longer its own."""
        async with self.db.write() as session:
            result = await session.execute(
                update(Run)
                .where(Run.id == run_id, Run.owner == self.owner, _unfinished())
                .values(lease_until=self._until())
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    async def _owned(self, session: Any, run_id: int) -> Run:
        run: Run | None = await session.scalar(
            select(Run).where(Run.id == run_id).options(selectinload(Run.steps))
        )
        if run is None or run.owner != self.owner:
            raise LeaseLost(f"run {run_id} is held by another process now")
        return run

    async def mark(
        self,
        run_id: int,
        name: StepName,
        status: StepStatus,
        outcome: dict[str, Any] | None = None,
        *,
        end: RunStatus | None = None,
        error: str | None = None,
    ) -> RunView:
        """Move one step (only while this process owns the run). ``end``: the run ends in the
        same transaction (done; or failed or interrupted, with ``error``, owing its notice and
        still held by this process until it is told), so no resume ever finds the step
        failed or interrupted in a running run."""
        async with self.db.write() as session:
            run = await self._owned(session, run_id)
            step = next(s for s in run.steps if s.name == name)
            now = utcnow()
            if status is StepStatus.RUNNING:
                step.started_at, step.finished_at = now, None
            else:
                step.started_at = step.started_at or now
                step.finished_at = now
            step.status = status
            if outcome is not None:
                step.outcome = outcome
            run.lease_until = self._until()
            if end is not None:
                run.status, run.error, run.finished_at = end, error, now
                if end is RunStatus.DONE:  # nothing owed: let go
                    run.told_at, run.owner, run.lease_until = now, None, None
                    self.let_go.add(run_id)
            release = await session.get(Release, run.release_id)
            await session.flush()
            view = run_view(run, release.slug if release else "?")
        if end is not None:
            log.info("run %s %s%s", run_id, end.value, f": {error}" if error else "")
        return view

    async def noticing(self, run_id: int) -> RunView:
        """The notice of an ended run is about to be sent (a retry looks for it first)."""
        return await self._notice(run_id, told=False)

    async def told(self, run_id: int) -> RunView:
        """The notice and its ping went out: the run owes nothing more, and is let go."""
        return await self._notice(run_id, told=True)

    async def _notice(self, run_id: int, *, told: bool) -> RunView:
        async with self.db.write() as session:
            run = await self._owned(session, run_id)
            now = utcnow()
            if told:
                run.told_at, run.owner, run.lease_until = now, None, None
                self.let_go.add(run_id)
            else:
                run.notice_at = run.notice_at or now
                run.lease_until = self._until()
            release = await session.get(Release, run.release_id)
            await session.flush()
            return run_view(run, release.slug if release else "?")

    async def get(self, run_id: int) -> RunView:
        async with self.db.read() as session:
            run = await session.scalar(
                select(Run).where(Run.id == run_id).options(selectinload(Run.steps))
            )
            if run is None:
                raise LookupError(run_id)
            release = await session.get(Release, run.release_id)
            return run_view(run, release.slug if release else "?")

    async def unfinished(self, guild_id: int) -> tuple[RunView, ...]:
        """The guild's runs still running (their process may have died) or still owing
        their notice, oldest first."""
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(Run, Release.slug)
                    .join(Release, Release.id == Run.release_id)
                    .where(Run.guild_id == guild_id, _unfinished())
                    .options(selectinload(Run.steps))
                    .order_by(Run.id)
                )
            ).all()
            return tuple(run_view(run, slug) for run, slug in rows)

    @contextlib.asynccontextmanager
    async def holding(self, run_id: int) -> AsyncIterator[None]:
        """Renew the run's lease while the block runs; if another process took the run (this
        one stalled past its lease), stop the block with :class:`LeaseLost`: its next write
        would be fenced anyway, and a command still running must not go on."""
        task = asyncio.current_task()
        lost = False

        async def renew() -> None:
            nonlocal lost
            while True:
                await asyncio.sleep(self.lease_s / 3)
                try:
                    mine = await self.renew(run_id)
                except Exception:
                    log.warning("could not renew the lease of run %s", run_id, exc_info=True)
                    continue
                if not mine:
                    if run_id in self.let_go:
                        return  # ended or told here: nothing more to hold
                    lost = True
                    if task is not None:
                        task.cancel()
                    return

        renewer = asyncio.create_task(renew(), name=f"run-{run_id}-lease")
        try:
            yield
        except asyncio.CancelledError:
            if not lost or task is None:
                raise
            task.uncancel()
            raise LeaseLost(f"run {run_id} was taken over") from None
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer


def _unfinished() -> Any:
    """Running, or ended failed or interrupted with the notice not sent."""
    return or_(
        Run.status == RunStatus.RUNNING,
        Run.status.in_((RunStatus.FAILED, RunStatus.INTERRUPTED)) & Run.told_at.is_(None),
    )
