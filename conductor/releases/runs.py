"""Ship runs in the database: one row per ``/release ship``, one per step, and the lease that
lets one process at a time drive a run.

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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from conductor.errors import ConductorError, InvalidMove, Locked, ReleaseChanged
from conductor.queries import (
    active_release,
    current_lock,
    lock_view,
    running_run,
    running_ship,
)
from conductor.states import (
    RUN_STEPS,
    ReleaseState,
    RunKind,
    ShipRunStatus,
    ShipStepStatus,
    StepName,
)
from conductor.text import locked_refusal
from conductor.views import Actor
from store.models import Release, ShipRun, ShipStep
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
FINISHED_STEPS = (ShipStepStatus.DONE, ShipStepStatus.SKIPPED)


class LeaseLost(ConductorError):
    """Another process holds the run now; this one must stop writing."""


class ShipRunning(ConductorError):
    """A ship of the release is already running."""


@dataclass(frozen=True, slots=True)
class StepView:
    name: StepName
    status: ShipStepStatus
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
    status: ShipRunStatus
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
    #: a rollback's: why, in the operator's words
    reason: str | None = None

    def step(self, name: StepName) -> StepView:
        return next(s for s in self.steps if s.name == name)

    @property
    def actor(self) -> Actor:
        return Actor(self.started_by, self.started_by_id)


def _run_view(run: ShipRun, release_slug: str) -> RunView:
    order: dict[str, int] = {name: i for i, name in enumerate(RUN_STEPS[run.kind])}
    steps = sorted(run.steps, key=lambda s: order.get(s.name, 99))
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
        steps=tuple(
            StepView(
                name=s.name,  # type: ignore[arg-type]  # only ever written from RUN_STEPS
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


class ShipRuns:
    def __init__(
        self, db: Database, *, owner: str | None = None, lease_s: float = DEFAULT_LEASE_S
    ) -> None:
        self.db = db
        self.owner = owner or process_identity()
        self.lease_s = lease_s

    def _until(self) -> datetime:
        return utcnow() + timedelta(seconds=self.lease_s)

    async def start(self, guild_id: int, release_slug: str, actor: Actor) -> RunView:
        """A new run of the assembled release, claimed by this process, with the next
        version reserved. Refused while another ship of it runs, and while the train is
        locked (checked here, in the run's own transaction, so a lock taken after the
        preflight still stops it)."""
        try:
            async with self.db.write() as session:
                lock = await current_lock(session, guild_id)
                if lock is not None:
                    held = lock_view(lock)
                    raise Locked(
                        locked_refusal(held, "ship", yours=held.is_holder(actor), now=utcnow()),
                        held,
                    )
                release = await active_release(session, guild_id)
                if release is None or release.slug != release_slug:
                    raise ReleaseChanged(
                        f"Release `{release_slug}` is no longer the active release; nothing "
                        "was shipped. Check `/release status`."
                    )
                if release.state is not ReleaseState.ASSEMBLED:
                    raise InvalidMove(
                        f"Release `{release.slug}` is {release.state.value}; only an "
                        "assembled release ships (`/release assemble` first)."
                    )
                await self._refuse_running(session, release)
                rollback = await running_run(session, guild_id, RunKind.ROLLBACK)
                if rollback is not None:
                    # production is being taken back under it: ship once that has ended
                    raise ShipRunning(
                        f"A rollback is running (started by {rollback.started_by} at "
                        f"{rollback.started_at:%H:%M UTC}); ship once it has ended. Nothing "
                        "was shipped."
                    )
                last = await session.scalar(
                    select(func.coalesce(func.max(Release.version), 0)).where(
                        Release.guild_id == guild_id
                    )
                )
                view = await self.open_run(
                    session, release, RunKind.SHIP, version=int(last or 0) + 1, actor=actor
                )
        except IntegrityError:
            # another process started one between our read and our write
            raise ShipRunning(
                f"A ship of `{release_slug}` is already running; its progress is in the "
                "release thread."
            ) from None
        log.info("ship run %s started release=%s by=%s", view.id, release_slug, actor.label)
        return view

    async def open_run(
        self,
        session: Any,
        release: Release,
        kind: RunKind,
        *,
        version: int,
        actor: Actor,
        restores_version: int | None = None,
        reason: str | None = None,
    ) -> RunView:
        """Add a running run of ``release`` held by this process, its steps pending, in the
        caller's unit of work (which has checked what may run). The partial unique index
        refuses a second running run of the release at the flush (``IntegrityError``)."""
        run = ShipRun(
            guild_id=release.guild_id,
            release_id=release.id,
            kind=kind,
            status=ShipRunStatus.RUNNING,
            version=version,
            restores_version=restores_version,
            reason=reason,
            started_by=actor.label,
            started_by_id=actor.id,
            started_at=utcnow(),
            owner=self.owner,
            lease_until=self._until(),
            steps=[ShipStep(name=n, status=ShipStepStatus.PENDING) for n in RUN_STEPS[kind]],
        )
        session.add(run)
        await session.flush()
        return _run_view(run, release.slug)

    @staticmethod
    async def _refuse_running(session: Any, release: Release) -> None:
        running = await running_ship(session, release.id)
        if running is not None:
            raise ShipRunning(
                f"A ship of `{release.slug}` is already running (started by "
                f"{running.started_by} at {running.started_at:%H:%M UTC}); its progress is in "
                "the release thread."
            )

    async def claim(self, run_id: int) -> bool:
        """Take the run if nobody holds it (its lease ran out, or its owner was a process of
        this host that is gone) or this process already does."""
        now = utcnow()
        async with self.db.write() as session:
            holder = await session.scalar(select(ShipRun.owner).where(ShipRun.id == run_id))
            free = (
                (ShipRun.owner.is_(None))
                | (ShipRun.owner == self.owner)
                | (ShipRun.lease_until < now)
            )
            if holder is not None and holder != self.owner and owner_is_gone(holder):
                log.info("ship run %s: its owner %s is gone; taking it up now", run_id, holder)
                free = free | (ShipRun.owner == holder)
            result = await session.execute(
                update(ShipRun)
                .where(ShipRun.id == run_id, ShipRun.status == ShipRunStatus.RUNNING, free)
                .values(owner=self.owner, lease_until=self._until())
                .execution_options(synchronize_session=False)
            )
            claimed = bool(getattr(result, "rowcount", 0))
        if claimed:
            log.info("ship run %s claimed by %s", run_id, self.owner)
        return claimed

    async def renew(self, run_id: int) -> bool:
        """Extend this process's lease; False when the run is no longer its own."""
        async with self.db.write() as session:
            result = await session.execute(
                update(ShipRun)
                .where(
                    ShipRun.id == run_id,
                    ShipRun.owner == self.owner,
                    ShipRun.status == ShipRunStatus.RUNNING,
                )
                .values(lease_until=self._until())
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    async def _owned(self, session: Any, run_id: int) -> ShipRun:
        run: ShipRun | None = await session.scalar(
            select(ShipRun).where(ShipRun.id == run_id).options(selectinload(ShipRun.steps))
        )
        if run is None or run.owner != self.owner:
            raise LeaseLost(f"ship run {run_id} is held by another process now")
        return run

    async def mark(
        self,
        run_id: int,
        name: StepName,
        status: ShipStepStatus,
        outcome: dict[str, Any] | None = None,
    ) -> RunView:
        """Move one step (only while this process owns the run)."""
        async with self.db.write() as session:
            run = await self._owned(session, run_id)
            step = next(s for s in run.steps if s.name == name)
            now = utcnow()
            if status is ShipStepStatus.RUNNING:
                step.started_at, step.finished_at = now, None
            else:
                step.started_at = step.started_at or now
                step.finished_at = now
            step.status = status
            if outcome is not None:
                step.outcome = outcome
            run.lease_until = self._until()
            release = await session.get(Release, run.release_id)
            await session.flush()
            return _run_view(run, release.slug if release else "?")

    async def finish(
        self, run_id: int, status: ShipRunStatus, *, error: str | None = None
    ) -> RunView:
        """End the run (done, failed or interrupted) and let go of it."""
        async with self.db.write() as session:
            run = await self._owned(session, run_id)
            run.status, run.error = status, error
            run.finished_at, run.owner, run.lease_until = utcnow(), None, None
            release = await session.get(Release, run.release_id)
            await session.flush()
            view = _run_view(run, release.slug if release else "?")
        log.info("ship run %s %s%s", run_id, status.value, f": {error}" if error else "")
        return view

    async def get(self, run_id: int) -> RunView:
        async with self.db.read() as session:
            run = await session.scalar(
                select(ShipRun).where(ShipRun.id == run_id).options(selectinload(ShipRun.steps))
            )
            if run is None:
                raise LookupError(run_id)
            release = await session.get(Release, run.release_id)
            return _run_view(run, release.slug if release else "?")

    async def unfinished(self, guild_id: int, kind: RunKind = RunKind.SHIP) -> tuple[RunView, ...]:
        """Runs of ``kind`` still marked running (their process may have died), oldest
        first."""
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(ShipRun, Release.slug)
                    .join(Release, Release.id == ShipRun.release_id)
                    .where(
                        ShipRun.guild_id == guild_id,
                        ShipRun.status == ShipRunStatus.RUNNING,
                        ShipRun.kind == kind,
                    )
                    .options(selectinload(ShipRun.steps))
                    .order_by(ShipRun.id)
                )
            ).all()
            return tuple(_run_view(run, slug) for run, slug in rows)

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
