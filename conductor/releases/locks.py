"""The release lock (``/release lock``, ``/release unlock``): a stop sign on the train.

While a guild's lock stands, no release is opened (:meth:`Releases.open`) and none is shipped
(the ship's admission, :meth:`Releases.shippable`, in the transaction that opens its run) —
by anyone, its holder included: the lock says "the train waits", not "only I may go", and the
holder lifts it with one command. Seals and rollbacks are never blocked (a redeploy only by
someone else's lock): they look after what
production runs now. A ship run started before the lock finishes (a resume too): the lock stops
new ships, it does not strand one halfway.

One lock per guild, held by the table's primary key, so two operators locking at once get one
winner and the other is told who holds it. Another operator takes a lock over only after a
confirmation naming the holder (the edge asks; :meth:`Locks.take_over` checks the lock is still
the one confirmed over). Only the holder unlocks: another operator takes the lock over first, so
overriding someone's lock is always one confirmed, recorded step. Every change is kept in
``lock_events``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from conductor.errors import InvalidInput, LockHeld, NotFound
from conductor.queries import current_lock, lock_event_view, lock_view
from conductor.states import LockEventKind
from conductor.text import LOCK_REASON_LIMIT, NAME_LIMIT, ago, clip, flat, storable, utc
from conductor.views import Actor, LockEventView, LockView
from store.models import LockEvent, ReleaseLock
from store.types import utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from store.db import Database, Session

log = logging.getLogger(__name__)

MAX_LOCK_REASON = 500


@dataclass(frozen=True, slots=True)
class LockOutcome:
    """What a lock or a takeover did."""

    lock: LockView
    kind: LockEventKind
    #: the lock as it stood before: the holder taken over from, the reason changed
    previous: LockView | None = None
    #: False: its holder locked again with the same reason (another process of the bot that
    #: heard the same command, or the same command twice): nothing changed, nothing recorded
    changed: bool = True


def lock_reason(reason: str) -> str:
    """The reason as stored, or an :class:`InvalidInput` saying what is wrong with it."""
    reason = storable(reason.strip())
    if not reason:
        raise InvalidInput(
            "Locking needs a reason, e.g. `/release lock reason: database migration tonight`."
        )
    if len(reason) > MAX_LOCK_REASON:
        raise InvalidInput(
            f"That reason is too long ({len(reason)} characters; at most {MAX_LOCK_REASON})."
        )
    return reason


def held_text(lock: LockView, now: datetime) -> str:
    """``🔒 olga holds the release lock since … (… ago) — reason.``"""
    return (
        f"🔒 {clip(lock.holder, NAME_LIMIT)} holds the release lock since {utc(lock.since)} "
        f"({ago(lock.since, now)} ago) — {flat(lock.reason, LOCK_REASON_LIMIT)}."
    )


class Locks:
    """Take, change, take over and release a guild's release lock; read it and its history."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def current(self, guild_id: int) -> LockView | None:
        async with self.db.read() as session:
            row = await current_lock(session, guild_id)
            return lock_view(row) if row is not None else None

    async def lock(self, guild_id: int, reason: str, actor: Actor) -> LockOutcome:
        """Lock the guild's train. Its holder locking again changes the reason; anyone else
        gets a :class:`LockHeld` naming the holder (taking it over is :meth:`take_over`). The
        holder locking again with the same reason changes nothing (``changed`` False)."""
        reason = lock_reason(reason)
        try:
            async with self.db.write() as session:
                row = await current_lock(session, guild_id)
                if row is not None and not lock_view(row).is_holder(actor):
                    raise LockHeld(
                        held_text(lock_view(row), utcnow())
                        + " Taking it over asks you to confirm.",
                        lock_view(row),
                    )
                if row is not None and (row.reason, row.holder) == (reason, actor.label):
                    held = lock_view(row)
                    return LockOutcome(held, LockEventKind.CHANGED, held, changed=False)
                outcome = await self._take(session, guild_id, row, reason, actor)
        except IntegrityError:
            # Another process took the lock between our read and our write: the primary key
            # said no. Tell who won.
            async with self.db.read() as session:
                row = await current_lock(session, guild_id)
            if row is None:
                raise
            raise LockHeld(
                held_text(lock_view(row), utcnow()) + " Taking it over asks you to confirm.",
                lock_view(row),
            ) from None
        self._logged(guild_id, outcome, actor)
        return outcome

    async def take_over(
        self, guild_id: int, reason: str, actor: Actor, *, expected: LockView
    ) -> LockOutcome:
        """Take the lock over from its holder, after the confirmation named ``expected``. If
        the lock changed meanwhile (another holder, or taken again), nothing is taken over and
        the :class:`LockHeld` names the lock as it stands; if it was released meanwhile, the
        train is simply locked."""
        reason = lock_reason(reason)
        async with self.db.write() as session:
            row = await current_lock(session, guild_id)
            if row is None or lock_view(row).is_holder(actor):
                outcome = await self._take(session, guild_id, row, reason, actor)
            elif (row.holder_id, row.holder, row.since) != (
                expected.holder_id,
                expected.holder,
                expected.since,
            ):
                raise LockHeld(
                    "The lock changed while you confirmed; nothing was taken over. "
                    + held_text(lock_view(row), utcnow()),
                    lock_view(row),
                )
            else:
                previous = lock_view(row)
                now = utcnow()
                row.holder, row.holder_id = actor.label, actor.id
                row.reason, row.since = reason, now
                session.add(
                    LockEvent(
                        guild_id=guild_id,
                        kind=LockEventKind.TAKEN_OVER,
                        actor=actor.label,
                        actor_id=actor.id,
                        at=now,
                        reason=reason,
                        previous_holder=previous.holder,
                        previous_holder_id=previous.holder_id,
                        previous_reason=previous.reason,
                        held_since=previous.since,
                    )
                )
                await session.flush()
                outcome = LockOutcome(lock_view(row), LockEventKind.TAKEN_OVER, previous)
        self._logged(guild_id, outcome, actor)
        return outcome

    async def unlock(self, guild_id: int, actor: Actor) -> LockView:
        """Release the lock; the lock that was released comes back. Only its holder releases
        it: anyone else gets a :class:`LockHeld` saying to take it over first."""
        async with self.db.write() as session:
            row = await current_lock(session, guild_id)
            if row is None:
                raise NotFound("The release train is not locked; there is nothing to unlock.")
            view = lock_view(row)
            if not view.is_holder(actor):
                raise LockHeld(
                    held_text(view, utcnow()) + " Only its holder unlocks it: take it over with "
                    "`/release lock` (it asks you to confirm), then `/release unlock`.",
                    view,
                )
            session.add(
                LockEvent(
                    guild_id=guild_id,
                    kind=LockEventKind.UNLOCKED,
                    actor=actor.label,
                    actor_id=actor.id,
                    at=utcnow(),
                    reason=row.reason,
                    held_since=row.since,
                )
            )
            await session.delete(row)
        log.info("release lock released guild=%s by=%s", guild_id, actor.label)
        return view

    async def events(self, guild_id: int, limit: int = 20) -> tuple[LockEventView, ...]:
        """The guild's lock history, newest first."""
        async with self.db.read() as session:
            rows = await session.scalars(
                select(LockEvent)
                .where(LockEvent.guild_id == guild_id)
                .order_by(LockEvent.id.desc())
                .limit(limit)
            )
            return tuple(lock_event_view(row) for row in rows)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def _take(
        session: Session, guild_id: int, row: ReleaseLock | None, reason: str, actor: Actor
    ) -> LockOutcome:
        """Lock anew (no lock stands), or change the holder's reason."""
        now = utcnow()
        previous = lock_view(row) if row is not None else None
        if row is None:
            row = ReleaseLock(
                guild_id=guild_id, holder=actor.label, holder_id=actor.id, reason=reason, since=now
            )
            session.add(row)
            kind = LockEventKind.LOCKED
        else:
            row.reason, row.holder = reason, actor.label  # the holder's name may have changed
            kind = LockEventKind.CHANGED
        session.add(
            LockEvent(
                guild_id=guild_id,
                kind=kind,
                actor=actor.label,
                actor_id=actor.id,
                at=now,
                reason=reason,
                previous_reason=previous.reason if previous is not None else None,
                held_since=previous.since if previous is not None else None,
            )
        )
        await session.flush()
        return LockOutcome(lock_view(row), kind, previous)

    @staticmethod
    def _logged(guild_id: int, outcome: LockOutcome, actor: Actor) -> None:
        taken_from = (
            f" from={outcome.previous.holder}"
            if outcome.kind is LockEventKind.TAKEN_OVER and outcome.previous is not None
            else ""
        )
        log.info(
            "release lock %s guild=%s by=%s%s",
            outcome.kind.value, guild_id, actor.label, taken_from,
        )  # fmt: skip


__all__ = ["LockOutcome", "Locks", "held_text", "lock_reason"]
