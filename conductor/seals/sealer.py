"""The sealer: run the smoke suite against production for a shipped release and record the
verdict. One seal per release at a time.

A seal never changes a release's state: the ship already happened. Whatever goes wrong here
(a bad ``[app]`` table, a missing browser, a runner that raises, a database that refuses the
record) becomes an ``error`` seal or an unrecorded outcome, never an exception out of
:meth:`Sealer.seal` (but for :class:`~conductor.errors.SealRunning`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conductor.errors import SealRunning
from conductor.notes import seal_line
from conductor.seals.evidence import Evidence
from conductor.seals.records import SealRecords, SealView
from conductor.states import SealStatus, SealTrigger
from conductor.views import Actor, ReleaseView
from smoke import AppConfig, CheckResult, SmokeConfigError, SmokeResult, Verdict, parse_app_config
from smoke.protocol import SmokeRunner
from store.types import utcnow

log = logging.getLogger(__name__)


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


class Sealer:
    """Runs the suite for a release and records the verdict. One seal per release at a time."""

    def __init__(
        self,
        records: SealRecords,
        runner: SmokeRunner,
        app_table: Mapping[str, Any] | None,
        evidence: Evidence | None = None,
    ) -> None:
        self.records = records
        self.runner = runner
        self.app_table = app_table
        #: where the screenshots of failed checks are kept (none given: only in memory)
        self.evidence = evidence if evidence is not None else Evidence(None)
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
        return SealOutcome(result, release, self._rollback(release))

    def outcome_of(self, release: ReleaseView, seal: SealView) -> SealOutcome:
        """The outcome of a seal in the release's history (one a rollback recorded)."""
        result = SmokeResult(
            verdict=Verdict(seal.status.value),
            summary=seal.summary,
            duration_ms=seal.duration_ms,
            checks=tuple(CheckResult.from_dict(r) for r in seal.results),
            error=seal.error,
            checked_at=seal.checked_at,
        )
        return SealOutcome(result, release, self._rollback(release))

    def _rollback(self, release: ReleaseView) -> str | None:
        try:
            app: AppConfig | None = self.app()
        except SmokeConfigError:
            app = None
        return _rollback(app, release)

    async def seal(
        self,
        guild_id: int,
        release: ReleaseView,
        *,
        trigger: SealTrigger,
        actor: Actor | None = None,
        verdict: bool = True,
    ) -> SealOutcome:
        """Run and record. Refuses a second seal of the same release while one runs; anything
        else that goes wrong is inside the outcome. ``verdict`` False: recorded in the
        release's history only (see :meth:`SealRecords.record`)."""
        key = (guild_id, release.slug)
        if key in self._running:
            raise SealRunning(
                f"A seal of `{release.slug}` is already running; its verdict will be posted in "
                "the release thread."
            )
        self._running.add(key)
        try:
            return await self._seal(
                guild_id, release, trigger=trigger, actor=actor, verdict=verdict
            )
        finally:
            self._running.discard(key)

    async def _seal(
        self,
        guild_id: int,
        release: ReleaseView,
        *,
        trigger: SealTrigger,
        actor: Actor | None,
        verdict: bool,
    ) -> SealOutcome:
        started = time.perf_counter()
        app: AppConfig | None = None
        try:
            app = self.app()
        except SmokeConfigError as error:
            result = SmokeResult.failure(f"the [app] config is invalid: {error}")
        else:
            result = await self._run(app, started)
            result = await self.evidence.keep(guild_id, release.slug, result, trigger=trigger)
        rollback = _rollback(app, release)
        try:
            stored = await self.records.record(
                guild_id, release.slug, result, trigger=trigger, actor=actor, verdict=verdict
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
