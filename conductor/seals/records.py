"""Seals and notes as stored on releases: the release a ``/seal`` means, each seal recorded
(the newest on the release, every one in its history), and the notes still owed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select

from conductor.errors import InvalidMove, NotFound
from conductor.queries import (
    last_shipped,
    load_release_view,
    load_release_views,
    require_release,
)
from conductor.releases.runs.store import owner_is_gone
from conductor.states import ReleaseState, RunStatus, SealStatus, SealTrigger
from conductor.views import Actor, ReleaseView
from smoke import SmokeResult
from store.models import Release, ReleaseSeal, Run
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

#: notes whose posting began less than this ago are being posted (here, or in another process
#: sharing the database): the reconcile leaves them alone
NOTES_IN_FLIGHT = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class SealView:
    status: SealStatus
    summary: str
    checked_at: datetime
    duration_ms: int
    trigger: SealTrigger
    sealed_by: str | None
    error: str | None = None
    results: tuple[dict[str, Any], ...] = ()


class SealRecords:
    """Reads and writes of seals and notes on releases."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def target(self, guild_id: int, slug: str | None) -> ReleaseView:
        """The release ``/seal`` means: the named one (which must be shipped) or the last
        shipped one."""
        async with self.db.read() as session:
            if slug is None or not slug.strip():
                release = await last_shipped(session, guild_id)
                if release is None:
                    raise NotFound("Nothing has shipped yet, so there is nothing to seal.")
            else:
                release = await require_release(session, guild_id, slug.strip().lower())
                _require_shipped(release)
            return await load_release_view(session, release)

    async def record(
        self,
        guild_id: int,
        slug: str,
        result: SmokeResult,
        *,
        trigger: SealTrigger,
        actor: Actor | None = None,
        verdict: bool = True,
    ) -> ReleaseView:
        """Store ``result`` as the release's seal; the earlier seals stay in its history. With
        ``verdict`` False, only in its history: the seal of the production a rollback left
        when no release of ours runs there (the release keeps its own verdict)."""
        results = [check.to_dict() for check in result.checks]
        status = SealStatus(result.verdict.value)
        async with self.db.write() as session:
            release = await require_release(session, guild_id, slug)
            if verdict:
                _require_shipped(release)
                release.seal_status = status
                release.seal_summary = result.summary
                release.seal_checked_at = result.checked_at
                release.seal_duration_ms = result.duration_ms
                release.seal_results = results
                release.seal_error = result.error
            elif release.state not in (ReleaseState.SHIPPED, ReleaseState.ROLLED_BACK):
                _require_shipped(release)
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
            release = await require_release(session, guild_id, slug)
            rows = (
                await session.scalars(
                    select(ReleaseSeal)
                    .where(ReleaseSeal.release_id == release.id)
                    .order_by(ReleaseSeal.id)
                )
            ).all()
            return tuple(seal_view(row) for row in rows)

    async def since(
        self, guild_id: int, slug: str, *, trigger: SealTrigger, at: datetime
    ) -> SealView | None:
        """The newest seal of the release with ``trigger`` checked at or after ``at`` (a seal
        recorded before a crash, found when the run is taken up again), or None."""
        async with self.db.read() as session:
            release = await require_release(session, guild_id, slug)
            row = await session.scalar(
                select(ReleaseSeal)
                .where(
                    ReleaseSeal.release_id == release.id,
                    ReleaseSeal.trigger == trigger,
                    ReleaseSeal.checked_at >= at,
                )
                .order_by(ReleaseSeal.id.desc())
                .limit(1)
            )
            return seal_view(row) if row is not None else None

    async def notes_posted(self, guild_id: int, slug: str, message_id: int | None) -> None:
        async with self.db.write() as session:
            release = await require_release(session, guild_id, slug)
            release.notes_posted_at = utcnow()
            release.notes_message_id = message_id

    async def notes_intent(self, guild_id: int, slug: str) -> None:
        """Posting the notes begins: from now on a post may reach Discord unrecorded, so the
        next attempt looks for it before posting again."""
        async with self.db.write() as session:
            release = await require_release(session, guild_id, slug)
            release.notes_intent_at = utcnow()

    async def claim_notes(
        self,
        guild_id: int,
        slug: str,
        seen: datetime | None,
        *,
        owner: str,
        in_flight: timedelta | None,
    ) -> datetime | None:
        """Begin posting the notes as ``owner`` (as :meth:`notes_intent`) only if they are
        not posted and no one began since this process read ``seen``, the intent it found;
        with ``in_flight``, an intent younger than that written by another process that may
        still run is its post under way, left alone. Two processes owing the same notes post
        them once. Returns the intent written, None when another process has them."""
        async with self.db.write() as session:
            release = await require_release(session, guild_id, slug)
            if release.notes_posted_at is not None or release.notes_intent_at != seen:
                return None
            now = utcnow()
            by = release.notes_intent_by
            if (
                seen is not None
                and in_flight is not None
                and now - seen < in_flight
                and by not in (None, owner)
                and not owner_is_gone(by)
            ):
                return None
            release.notes_intent_at, release.notes_intent_by = now, owner
            return now

    async def notes_not_posted(self, guild_id: int, slug: str, claimed: datetime) -> None:
        """The post begun at ``claimed`` failed: its intent is left to be looked for first,
        but no longer in flight, so the next attempt need not wait."""
        async with self.db.write() as session:
            release = await require_release(session, guild_id, slug)
            if release.notes_intent_at == claimed:
                release.notes_intent_at = claimed - NOTES_IN_FLIGHT

    async def notes_owed(self, guild_id: int) -> tuple[ReleaseView, ...]:
        """Shipped releases whose notes never reached their thread, oldest first; a release
        whose ship run is still running (here or in another process) posts its own."""
        running = select(Run.release_id).where(Run.status == RunStatus.RUNNING)
        async with self.db.read() as session:
            rows = (
                await session.scalars(
                    select(Release)
                    .where(
                        Release.guild_id == guild_id,
                        Release.state == ReleaseState.SHIPPED,
                        Release.notes_posted_at.is_(None),
                        Release.id.not_in(running),
                    )
                    .order_by(Release.version)
                )
            ).all()
            return tuple(await load_release_views(session, rows))


def seal_view(row: ReleaseSeal) -> SealView:
    return SealView(
        status=row.status,
        summary=row.summary,
        checked_at=row.checked_at,
        duration_ms=row.duration_ms,
        trigger=cast(SealTrigger, row.trigger),  # only ever written from SealTrigger
        sealed_by=row.sealed_by,
        error=row.error,
        results=tuple(row.results or ()),
    )


def _require_shipped(release: Release) -> None:
    if release.state is not ReleaseState.SHIPPED:
        raise InvalidMove(
            f"Release `{release.slug}` is {release.state.value}; only a shipped release has "
            "production to seal."
        )
