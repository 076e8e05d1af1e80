"""The smoke seal in the domain: run the suite against production, record the verdict on the
release (and in its history), and answer which release a ``/seal`` means.

A seal never changes a release's state: the ship already happened. Whatever goes wrong here
(a bad ``[app]`` table, a missing browser, a runner that raises) becomes a recorded ``error``
seal with its reason, never an exception out of :meth:`Sealer.seal_after_ship`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from conductor.errors import ConductorError, InvalidMove, NotFound
from conductor.notes import seal_line
from conductor.readmodels import load_release_view
from conductor.states import ReleaseState
from conductor.views import Actor, ReleaseView
from smoke import (
    AppConfig,
    CheckResult,
    SmokeConfigError,
    SmokeResult,
    Verdict,
    parse_app_config,
)
from smoke.protocol import SmokeRunner
from store.models import Release, ReleaseSeal, SealStatus
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

SHIP, RESEAL = "ship", "reseal"


class SealRunning(ConductorError):
    """A seal of the same release is already running."""


class NotConfigured(ConductorError):
    """There is no ``[app]`` table, so there is nothing to seal against."""


@dataclass(frozen=True, slots=True)
class SealView:
    status: SealStatus
    summary: str
    checked_at: datetime
    duration_ms: int
    trigger: str
    sealed_by: str | None
    error: str | None = None
    results: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class SealOutcome:
    """What a seal found and where it ended up."""

    result: SmokeResult
    #: the release as stored after the seal (the seal fields filled when ``recorded``)
    release: ReleaseView
    #: the rollback command for this release, rendered from the template (None: none set)
    rollback: str | None
    #: False when the database refused the record; the result is still reported
    recorded: bool = True

    @property
    def status(self) -> SealStatus:
        return SealStatus(self.result.verdict.value)

    @property
    def line(self) -> str:
        """``🟢 Smoke seal: green — 6/6 checks passed``, from the result itself (so a seal whose
        record failed still reads right)."""
        return seal_line(self.status, self.result.summary)

    @property
    def alarming(self) -> bool:
        """Red or error: the operator is pinged with the rollback command."""
        return self.status is not SealStatus.GREEN


class SealRecords:
    """Reads and writes of seals and notes on releases."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def target(self, guild_id: int, slug: str | None) -> ReleaseView:
        """The release ``/seal`` means: the named one (which must be shipped) or the last
        shipped one."""
        async with self.db.read() as session:
            if slug is None or not slug.strip():
                release = await session.scalar(
                    select(Release)
                    .where(Release.guild_id == guild_id, Release.state == ReleaseState.SHIPPED)
                    .order_by(Release.version.desc())
                    .limit(1)
                )
                if release is None:
                    raise NotFound("Nothing has shipped yet, so there is nothing to seal.")
            else:
                release = await self._require(session, guild_id, slug.strip().lower())
                _require_shipped(release)
            return await load_release_view(session, release)

    async def record(
        self,
        guild_id: int,
        slug: str,
        result: SmokeResult,
        *,
        trigger: str,
        actor: Actor | None = None,
    ) -> ReleaseView:
        """Store ``result`` as the release's seal; the earlier seals stay in its history."""
        results = [check.to_dict() for check in result.checks]
        status = SealStatus(result.verdict.value)
        async with self.db.write() as session:
            release = await self._require(session, guild_id, slug)
            _require_shipped(release)
            release.seal_status = status
            release.seal_summary = result.summary
            release.seal_checked_at = result.checked_at
            release.seal_duration_ms = result.duration_ms
            release.seal_results = results
            release.seal_error = result.error
            session.add(
                ReleaseSeal(
                    release_id=release.id,
                    status=status,
                    summary=result.summary,
                    error=result.error,
                    checked_at=result.checked_at,
                    duration_ms=result.duration_ms,
                    results=results,
                    trigger=trigger,
                    sealed_by=actor.name if actor else None,
                    sealed_by_id=actor.id if actor else None,
                )
            )
            await session.flush()
            view = await load_release_view(session, release)
        log.info(
            "release sealed guild=%s release=%s seal=%s trigger=%s summary=%r",
            guild_id, slug, status.value, trigger, result.summary,
        )  # fmt: skip
        return view

    async def history(self, guild_id: int, slug: str) -> tuple[SealView, ...]:
        """Every seal of a release, oldest first."""
        async with self.db.read() as session:
            release = await self._require(session, guild_id, slug)
            rows = (
                await session.scalars(
                    select(ReleaseSeal)
                    .where(ReleaseSeal.release_id == release.id)
                    .order_by(ReleaseSeal.id)
                )
            ).all()
            return tuple(
                SealView(
                    status=row.status,
                    summary=row.summary,
                    checked_at=row.checked_at,
                    duration_ms=row.duration_ms,
                    trigger=row.trigger,
                    sealed_by=row.sealed_by,
                    error=row.error,
                    results=tuple(row.results or ()),
                )
                for row in rows
            )

    async def notes_posted(self, guild_id: int, slug: str, message_id: int | None) -> None:
        async with self.db.write() as session:
            release = await self._require(session, guild_id, slug)
            release.notes_posted_at = utcnow()
            release.notes_message_id = message_id

    async def without_notes(self, guild_id: int) -> tuple[ReleaseView, ...]:
        """Shipped releases whose notes never reached their thread, oldest first."""
        async with self.db.read() as session:
            rows = (
                await session.scalars(
                    select(Release)
                    .where(
                        Release.guild_id == guild_id,
                        Release.state == ReleaseState.SHIPPED,
                        Release.notes_posted_at.is_(None),
                    )
                    .order_by(Release.version)
                )
            ).all()
            return tuple([await load_release_view(session, r) for r in rows])

    @staticmethod
    async def _require(session: Any, guild_id: int, slug: str) -> Release:
        release: Release | None = await session.scalar(
            select(Release).where(Release.guild_id == guild_id, Release.slug == slug)
        )
        if release is None:
            raise NotFound(
                f"No release `{slug[:100]}`. `/release status` shows the last shipped one."
            )
        return release


def _require_shipped(release: Release) -> None:
    if release.state is not ReleaseState.SHIPPED:
        raise InvalidMove(
            f"Release `{release.slug}` is {release.state.value}; only a shipped release has "
            "production to seal."
        )


class Sealer:
    """Runs the suite for a release and records the verdict. One seal per release at a time."""

    def __init__(
        self,
        records: SealRecords,
        runner: SmokeRunner,
        app_table: Mapping[str, Any] | None,
    ) -> None:
        self.records = records
        self.runner = runner
        self.app_table = app_table
        self._running: set[tuple[int, str]] = set()

    @property
    def configured(self) -> bool:
        return self.app_table is not None

    def app(self) -> AppConfig:
        """The validated ``[app]`` table; raises :class:`SmokeConfigError`."""
        return parse_app_config(self.app_table)

    def running(self, guild_id: int, slug: str) -> bool:
        return (guild_id, slug) in self._running

    def stored(self, release: ReleaseView) -> SealOutcome | None:
        """The outcome of the seal already recorded on ``release`` (for notes posted late)."""
        if release.seal_status is None:
            return None
        result = SmokeResult(
            verdict=Verdict(release.seal_status.value),
            summary=release.seal_summary or "",
            duration_ms=release.seal_duration_ms or 0,
            checks=tuple(CheckResult.from_dict(r) for r in release.seal_results),
            error=release.seal_error,
            checked_at=release.seal_checked_at or utcnow(),
        )
        try:
            app: AppConfig | None = self.app()
        except SmokeConfigError:
            app = None
        return SealOutcome(result, release, _rollback(app, release))

    async def seal(
        self, guild_id: int, release: ReleaseView, *, trigger: str, actor: Actor | None = None
    ) -> SealOutcome:
        """Run and record. Refuses a second seal of the same release while one runs; anything
        else that goes wrong is inside the outcome."""
        key = (guild_id, release.slug)
        if key in self._running:
            raise SealRunning(
                f"A seal of `{release.slug}` is already running; its verdict will be posted in "
                "the release thread."
            )
        self._running.add(key)
        try:
            return await self._seal(guild_id, release, trigger=trigger, actor=actor)
        finally:
            self._running.discard(key)

    async def _seal(
        self, guild_id: int, release: ReleaseView, *, trigger: str, actor: Actor | None
    ) -> SealOutcome:
        started = time.perf_counter()
        app: AppConfig | None = None
        try:
            app = self.app()
        except SmokeConfigError as error:
            result = SmokeResult.failure(f"the [app] config is invalid: {error}")
        else:
            result = await self._run(app, started)
        rollback = _rollback(app, release)
        try:
            stored = await self.records.record(
                guild_id, release.slug, result, trigger=trigger, actor=actor
            )
        except Exception:
            # The verdict is still reported; only its record is missing (and logged).
            log.exception("could not record the seal of %s", release.slug)
            return SealOutcome(result, release, rollback, recorded=False)
        return SealOutcome(result, stored, rollback)

    async def _run(self, app: AppConfig, started: float) -> SmokeResult:
        try:
            return await self.runner.run(app)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # The protocol says never raise; a runner that does still yields a verdict.
            log.exception("the smoke runner raised")
            elapsed = int((time.perf_counter() - started) * 1000)
            return SmokeResult.failure(f"the runner crashed: {error!r}"[:300], elapsed)


def _rollback(app: AppConfig | None, release: ReleaseView) -> str | None:
    if app is None:
        return None
    return app.rollback(release=release.slug, version=release.version, merge_sha=release.merge_sha)
