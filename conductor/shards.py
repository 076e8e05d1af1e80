"""Several processes on one database: which process holds each gateway shard, and when a
process may IDENTIFY.

A shard has one owner at a time, decided by the database (``shard_leases``): a process takes
a shard that no one holds, or whose lease ran out, and renews its lease while it runs. Each
take moves the shard's ``token`` up by one; a renewal names the token it holds, so a process
that stalled past its lease and lost the shard finds out at its next renewal and lets go (the
fence). A process started with another shard count waits until no lease of the old count is
live: two counts would cut the guilds differently and overlap.

Discord allows ``max_concurrency`` IDENTIFYs per 5 s, one per bucket (``shard_id %
max_concurrency``), whatever the process: a bucket's slot (``identify_slots``) is taken in the
database, at most once per :data:`IDENTIFY_SPACING_S`.

Time is this host's wall clock, as for the runs' leases: processes on several hosts need
their clocks kept in step (NTP).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from conductor.releases.runs.store import process_identity
from store.models import IdentifySlot, ShardLease
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

#: how long a lease lasts without a renewal; renewed every third of it
DEFAULT_SHARD_LEASE_S = 30.0
#: Discord's window is 5 s; the extra second covers the time between taking a slot and the
#: IDENTIFY reaching Discord on a loaded host
IDENTIFY_SPACING_S = 6.0


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a shard now, and until when (for the logs while a process waits)."""

    shard_id: int
    owner: str
    token: int
    expires_at: datetime


class ShardLeases:
    """The shard leases and identify slots of one database, as one process sees them:
    ``owner`` names this process."""

    def __init__(
        self,
        db: Database,
        shard_count: int,
        *,
        owner: str | None = None,
        lease_s: float = DEFAULT_SHARD_LEASE_S,
    ) -> None:
        if shard_count < 1:
            raise ValueError("shard_count must be at least 1")
        self.db = db
        self.shard_count = shard_count
        self.owner = owner or process_identity()
        self.lease_s = lease_s

    def _until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_s)

    async def claim(self, shard_ids: Iterable[int]) -> dict[int, int]:
        """Take each of ``shard_ids`` that is free (never held, its lease run out, or already
        this process's). Returns the shards this process holds among them now, each with its
        token. Nothing is taken while a live lease of another shard count stands."""
        wanted = sorted(set(shard_ids))
        if not wanted:
            return {}
        held: dict[int, int] = {}
        async with self.db.write() as session:
            now = utcnow()
            other_count = await session.scalar(
                select(ShardLease.shard_id)
                .where(ShardLease.shard_count != self.shard_count, ShardLease.expires_at > now)
                .limit(1)
            )
            if other_count is not None:
                return {}
            rows = {
                row.shard_id: row
                for row in await session.scalars(
                    select(ShardLease).where(ShardLease.shard_id.in_(wanted))
                )
            }
            for shard_id in wanted:
                row = rows.get(shard_id)
                if row is None:
                    row = ShardLease(
                        shard_id=shard_id,
                        shard_count=self.shard_count,
                        owner=self.owner,
                        token=1,
                        expires_at=self._until(now),
                    )
                    session.add(row)
                elif row.owner == self.owner and row.expires_at > now:
                    row.expires_at = self._until(now)  # already ours: renewed, same token
                elif row.expires_at <= now:
                    row.owner, row.token = self.owner, row.token + 1
                    row.shard_count, row.expires_at = self.shard_count, self._until(now)
                else:
                    continue  # another process's, live
                held[shard_id] = row.token
        for shard_id, token in held.items():
            log.debug("shard %d held by %s (token %d)", shard_id, self.owner, token)
        return held

    async def renew(self, held: Mapping[int, int]) -> set[int]:
        """Extend the leases of ``held`` (shard → token). Returns the shards lost: taken by
        another process (the token moved) or gone. Raises
        :class:`~store.errors.DatabaseUnavailable` when the database cannot take it."""
        if not held:
            return set()
        lost: set[int] = set()
        async with self.db.write() as session:
            now = utcnow()
            rows = {
                row.shard_id: row
                for row in await session.scalars(
                    select(ShardLease).where(ShardLease.shard_id.in_(list(held)))
                )
            }
            for shard_id, token in held.items():
                row = rows.get(shard_id)
                if row is None or row.owner != self.owner or row.token != token:
                    lost.add(shard_id)
                    continue
                # Past its expiry but not yet taken: still this process's (no one else could
                # have connected on it without moving the token).
                row.expires_at = self._until(now)
        for shard_id in sorted(lost):
            log.warning("shard %d: lease lost (another process took it)", shard_id)
        return lost

    async def release(self, held: Mapping[int, int]) -> None:
        """Let go of ``held`` at once (a clean stop): the next process need not wait out the
        leases. A shard taken meanwhile is left to its new owner."""
        if not held:
            return
        async with self.db.write() as session:
            rows = await session.scalars(
                select(ShardLease).where(ShardLease.shard_id.in_(list(held)))
            )
            past = utcnow() - timedelta(seconds=1)
            for row in rows:
                if row.owner == self.owner and row.token == held.get(row.shard_id):
                    row.expires_at = past

    async def holders(self) -> list[Holder]:
        """Every shard lease as stored (live or not), by shard."""
        async with self.db.read() as session:
            rows = await session.scalars(select(ShardLease).order_by(ShardLease.shard_id))
            return [Holder(r.shard_id, r.owner, r.token, r.expires_at) for r in rows]

    async def identify_slot(self, bucket: int, *, spacing_s: float = IDENTIFY_SPACING_S) -> float:
        """Take the bucket's IDENTIFY slot: 0.0 when taken (this process may IDENTIFY now),
        else how many seconds until it may be free."""
        async with self.db.write() as session:
            now = utcnow()
            row = await session.get(IdentifySlot, bucket)
            if row is not None and row.next_at > now:
                return max((row.next_at - now).total_seconds(), 0.001)
            next_at = now + timedelta(seconds=spacing_s)
            if row is None:
                session.add(IdentifySlot(bucket=bucket, next_at=next_at, taken_by=self.owner))
            else:
                row.next_at, row.taken_by = next_at, self.owner
        return 0.0
