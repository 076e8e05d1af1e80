"""Reminders: a release left assembling or assembled, a red seal nobody acted on, a lock held
too long, each nagged once per interval in the release's thread, naming who can act and how.

What holds and what is due is decided here: :func:`due` over one condition and what was
already said about it (the ``reminders`` table); the edge's :class:`ReminderSink` only
delivers. The ``[reminders]`` table::

    [reminders]
    idle_release_after = "24h"   # a release assembling or assembled, untouched that long
    red_seal_after = "2h"        # production's seal red (or error), nobody acting on it
    lock_after = "8h"            # the train locked that long
    check_every = "1m"           # how often the conditions are looked at

A duration is ``"90m"``, ``"2h"``, ``"1d12h"`` (d, h, m, s); ``"off"`` (or 0) turns that
reminder off. A bare number is refused: minutes or hours would be a guess.

Never a flood: a reminder goes out when its condition has held for an interval and the last
one is an interval old, so a bot that was away for ten intervals sends one, not ten. Exactly
once, even across a crash: the reminder's text is recorded before it is sent and marked sent
after (the notes' intent, ``conductor.releases.publisher``); a crash between Discord taking it
and the record leaves the intent, and the next attempt looks for that text in Discord before
it sends anything. When a condition clears, its record goes, and the next time it holds it
starts afresh.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conductor.queries import (
    active_release,
    last_shipped,
    load_release_view,
    release_view,
    require_release,
)
from conductor.states import TRAIN_HOLDING_SEALS, ReleaseState, ReminderKind, SealStatus
from conductor.text import SEAL_BADGE, clip, version
from conductor.views import ReleaseView
from store.db import Database
from store.models import Release, Reminder, StageEvent, Task
from store.types import utcnow

log = logging.getLogger(__name__)

#: what time it is: the database's clock (the bot's tests move it with simcord's)
Clock = Callable[[], datetime]

#: a reminder recorded as being sent less than this ago is in flight (here, or in another
#: process sharing the database): left alone, not looked for nor sent again
IN_FLIGHT = timedelta(minutes=2)
#: a reminder Discord refused is tried again after this (or one interval, if shorter)
RETRY_AFTER = timedelta(minutes=10)
#: the shortest interval: anything shorter would flood the thread
SHORTEST = timedelta(minutes=1)
LONGEST = timedelta(days=366)


class ReminderConfigError(ValueError):
    """The ``[reminders]`` table is malformed; the message names the setting."""


@dataclass(frozen=True, slots=True)
class ReminderConfig:
    """The intervals, each None when that reminder is off."""

    idle_release_after: timedelta | None = timedelta(hours=24)
    red_seal_after: timedelta | None = timedelta(hours=2)
    lock_after: timedelta | None = timedelta(hours=8)
    check_every: timedelta = timedelta(minutes=1)


_INTERVALS = ("idle_release_after", "red_seal_after", "lock_after")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (86400, 3600, 60, 1)


def parse_duration(value: object, name: str, *, may_be_off: bool = True) -> timedelta | None:
    """``"90m"``, ``"2h"``, ``"1d12h"``: a duration; ``"off"`` or 0: None. Anything else
    raises :class:`ReminderConfigError` naming ``reminders.<name>``."""
    shown = f"reminders.{name}"
    example = '"90m", "2h" or "1d12h"' + (', or "off"' if may_be_off else "")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ReminderConfigError(f"{shown}: expected a duration such as {example}")
    text = str(value).strip().lower().replace(" ", "")
    if text in ("off", "0") or (not isinstance(value, str) and value == 0):
        if not may_be_off:
            raise ReminderConfigError(f"{shown}: cannot be off (got {value!r})")
        return None
    match = _DURATION.fullmatch(text) if isinstance(value, str) else None
    if match is None or not any(match.groups()):
        why = "a number needs a unit" if not isinstance(value, str) else "not a duration"
        raise ReminderConfigError(f"{shown}: {why}; expected {example} (got {value!r})")
    seconds = sum(int(part or 0) * unit for part, unit in zip(match.groups(), _UNITS, strict=True))
    if seconds > LONGEST.total_seconds():
        raise ReminderConfigError(f"{shown}: at most {LONGEST.days}d (got {value!r})")
    return timedelta(seconds=seconds)


def parse_reminders_config(table: Mapping[str, Any] | None) -> ReminderConfig:
    """The ``[reminders]`` table, validated (None or empty: the defaults)."""
    values = dict(table or {})
    known = (*_INTERVALS, "check_every")
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ReminderConfigError(
            f"reminders.{unknown[0]}: not a setting (the settings are {', '.join(known)})"
        )
    parsed: dict[str, Any] = {}
    for name in _INTERVALS:
        if name in values:
            every = parse_duration(values[name], name)
            if every is not None and every < SHORTEST:
                raise ReminderConfigError(
                    f"reminders.{name}: at least 1m, or the thread floods (got {values[name]!r})"
                )
            parsed[name] = every
    if "check_every" in values:
        check = parse_duration(values["check_every"], "check_every", may_be_off=False)
        if check is None or not timedelta(seconds=1) <= check <= timedelta(hours=1):
            raise ReminderConfigError(
                f"reminders.check_every: between 1s and 1h (got {values['check_every']!r})"
            )
        parsed["check_every"] = check
    return ReminderConfig(**parsed)


# -- the conditions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldLock:
    """The train's lock as it stands: who holds it, since when, why."""

    holder: str
    holder_id: int | None
    since: datetime
    reason: str = ""


class StandingLock(Protocol):
    """What a reminder needs of a lock (the lock service's ``LockView``, or a
    :class:`HeldLock`)."""

    @property
    def holder(self) -> str: ...
    @property
    def holder_id(self) -> int | None: ...
    @property
    def since(self) -> datetime: ...
    @property
    def reason(self) -> str: ...


class LockSource(Protocol):
    """Where the lock is kept (:class:`~conductor.releases.locks.Locks`): the guild's lock
    now, or None."""

    async def current(self, guild_id: int) -> StandingLock | None: ...


@dataclass(frozen=True, slots=True)
class Condition:
    """Something that nags, as it stands now."""

    kind: ReminderKind
    #: what it is about: a release's slug, or ``lock``
    subject: str
    #: when it began (for a release: when it was last touched)
    since: datetime
    #: its reminders' interval
    every: timedelta
    #: the release whose thread the reminder goes to (None: the notes channel)
    release: ReleaseView | None
    lock: StandingLock | None = None

    @property
    def key(self) -> tuple[ReminderKind, str]:
        return self.kind, self.subject


@dataclass(frozen=True, slots=True)
class Said:
    """What was said about a condition (a row of ``reminders``)."""

    kind: ReminderKind
    subject: str
    since: datetime
    count: int = 0
    last_sent_at: datetime | None = None
    intent_at: datetime | None = None
    intent_text: str | None = None
    failed_at: datetime | None = None


#: ``send``: a reminder is due; ``look``: one may have reached Discord unrecorded, look for
#: it before sending; None: nothing to do now
Action = Literal["send", "look"]


def due(condition: Condition, said: Said | None, now: datetime) -> Action | None:
    """Whether ``condition`` gets a reminder ``now``: it has held for its interval and the
    last reminder of this episode (if any) is an interval old. At most one per interval,
    however long the bot was away."""
    every = condition.every
    if now - condition.since < every:
        return None
    if said is None or said.since != condition.since:
        return "send"  # a new episode: what was said about an earlier one does not count
    if said.intent_at is not None:
        return "look" if now - said.intent_at >= IN_FLIGHT else None
    if said.failed_at is not None and now - said.failed_at < min(every, RETRY_AFTER):
        return None
    if said.last_sent_at is None or now - said.last_sent_at >= every:
        return "send"
    return None


# -- the words --------------------------------------------------------------------------------


def span(delta: timedelta) -> str:
    """``45 min``, ``26 h``, ``3 days 2 h``."""
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, days = minutes // 60, minutes // 1440
    if hours < 1:
        return f"{minutes} min"
    if days < 2:
        rest = minutes % 60
        return f"{hours} h" + (f" {rest} min" if rest else "")
    rest = hours % 24
    return f"{days} days" + (f" {rest} h" if rest else "")


def _at(moment: datetime) -> str:
    """A Discord timestamp: each reader sees it in their own time zone."""
    return f"<t:{int(moment.timestamp())}:f>"


def _members(release: ReleaseView) -> str:
    count = len(release.members)
    return "no members" if not count else f"{count} member{'s' if count != 1 else ''}"


def _user_text(text: str, limit: int) -> str:
    return clip(" ".join(text.split()), limit)


def reminder_text(condition: Condition, *, number: int, now: datetime, who: str) -> str:
    """The reminder: its first line says what has held, for how long and since when (and is
    what a retry looks for); the second who can act, and with which commands. ``who`` is the
    edge's words for the operators (``anyone with the `Operators` role``)."""
    head = f"⏰ **Reminder {number}**: "
    held = span(now - condition.since)
    release, lock = condition.release, condition.lock
    if lock is not None:
        holder = _user_text(lock.holder, 100) or "someone"
        why = f": “{_user_text(lock.reason, 300)}”" if lock.reason.strip() else ""
        return (
            f"{head}the train has been locked by **{holder}** for {held} (since "
            f"{_at(condition.since)}){why}. Nothing opens or ships while it is locked.\n"
            f"Who can act: **{holder}** with `/release unlock`; {who} can take the lock over "
            "with `/release lock`."
        )
    if release is None:
        raise ValueError(f"a reminder about {condition.subject} without its release")
    if condition.kind is ReminderKind.RED_SEAL:
        status = release.seal_status or SealStatus.RED
        summary = _user_text(release.seal_error or release.seal_summary or "", 300)
        return (
            f"{head}production runs `{release.slug}`{version(release)}, and its smoke seal "
            f"has been {SEAL_BADGE[status]} {status.value} for {held} (since "
            f"{_at(condition.since)}) with nobody acting on it"
            + (f": {summary}" if summary else "")
            + ". Until then the train is held: `/release open` asks for a confirmation.\n"
            f"Who can act: {who}, with `/release rollback` (production goes back to the "
            "release before it) or, once production is fixed, `/seal` (sealed green again)."
        )
    if release.state is ReleaseState.ASSEMBLED:
        return (
            f"{head}`{release.slug}` has been assembled for {held} and has not shipped "
            f"(untouched since {_at(condition.since)}, {_members(release)}).\n"
            f"Who can act: {who}, with `/release ship` or `/release abandon`."
        )
    return (
        f"{head}`{release.slug}` has been assembling for {held} (untouched since "
        f"{_at(condition.since)}, {_members(release)}).\n"
        f"Who can act: {who}, with `/release add` (more tasks), `/release assemble` (complete "
        "it) or `/release abandon` (drop it)."
    )


def marker(text: str) -> str:
    """What identifies a reminder in Discord: its first line (the number, the subject, since
    when)."""
    return text.split("\n", 1)[0]


# -- delivery ---------------------------------------------------------------------------------


class ReminderSink(Protocol):
    """Where reminders go (``bot.reminders`` for Discord). Its methods never raise for a
    failed delivery: they log it and answer False."""

    async def operators(self, guild_id: int) -> str:
        """Who may act, in words that ping nobody: ``anyone with the `Operators` role``."""
        ...

    async def remind(self, guild_id: int, release: ReleaseView | None, text: str) -> bool:
        """Post ``text``, mentioning nobody, in the release's thread (else where its notes
        fall back to); without a release, in the notes channel. Whether it was posted."""
        ...

    async def reminded(self, guild_id: int, release: ReleaseView | None, marker: str) -> bool:
        """Whether this bot's recent message where ``remind`` posts contains ``marker``: a
        reminder that reached Discord before its record did."""
        ...


# -- the service ------------------------------------------------------------------------------


def _said(row: Reminder) -> Said:
    return Said(
        kind=row.kind,
        subject=row.subject,
        since=row.since,
        count=row.count,
        last_sent_at=row.last_sent_at,
        intent_at=row.intent_at,
        intent_text=row.intent_text,
        failed_at=row.failed_at,
    )


class Reminders:
    def __init__(
        self,
        db: Database,
        config: ReminderConfig | None = None,
        sink: ReminderSink | None = None,
        *,
        locks: LockSource | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.db = db
        self.config = config or ReminderConfig()
        #: None: nowhere to post (the CLI, the domain's tests): nothing is due then
        self.sink = sink
        #: the lock (None: no lock kept, no lock reminders)
        self.locks = locks
        self.clock = clock or utcnow

    async def conditions(self, guild_id: int) -> list[Condition]:
        """What nags in the guild now, for the reminders that are on (each release a light
        view, without its members: this runs every round)."""
        async with self.db.read() as session:
            found, active = await self._release_conditions(session, guild_id)
        return found + await self._lock_condition(guild_id, active)

    async def _release_conditions(
        self, session: AsyncSession, guild_id: int
    ) -> tuple[list[Condition], ReleaseView | None]:
        """The active release left untouched, production's red seal; and the active release."""
        config = self.config
        found: list[Condition] = []
        active: ReleaseView | None = None
        row = await active_release(session, guild_id)
        if row is not None:
            active = release_view(row, ())
            if (every := config.idle_release_after) is not None:
                since = await _untouched_since(session, row)
                found.append(Condition(ReminderKind.RELEASE, row.slug, since, every, active))
        if (every := config.red_seal_after) is not None:
            shipped = await last_shipped(session, guild_id)
            # held_by's rule, without loading the members every round
            if shipped is not None and shipped.seal_status in TRAIN_HOLDING_SEALS:
                since = shipped.seal_checked_at or shipped.shipped_at or shipped.opened_at
                held = release_view(shipped, ())
                found.append(Condition(ReminderKind.RED_SEAL, shipped.slug, since, every, held))
        return found, active

    async def _lock_condition(self, guild_id: int, active: ReleaseView | None) -> list[Condition]:
        every = self.config.lock_after
        if every is None or self.locks is None:
            return []
        lock = await self.locks.current(guild_id)
        if lock is None:
            return []
        return [Condition(ReminderKind.LOCK, "lock", lock.since, every, active, lock=lock)]

    async def said(self, guild_id: int) -> dict[tuple[ReminderKind, str], Said]:
        """What was said about each condition of the guild."""
        async with self.db.read() as session:
            return await _said_in(session, guild_id)

    async def tick(self, guild_id: int) -> int:
        """Send the guild's reminders that are due now, and forget those whose condition
        cleared. Returns how many were sent. Raises
        :class:`~store.errors.DatabaseUnavailable` when the database cannot be read."""
        now = self.clock()
        async with self.db.read() as session:
            current, active = await self._release_conditions(session, guild_id)
            said = await _said_in(session, guild_id)
        current += await self._lock_condition(guild_id, active)
        gone = set(said) - {c.key for c in current}
        if gone:
            await self._forget(guild_id, gone)
        sink = self.sink
        if sink is None:
            return 0
        sent = 0
        for condition in current:
            before = said.get(condition.key)
            action = due(condition, before, now)
            if action is None and _in_flight(condition, before, now):
                log.info(
                    "reminder of %s %s is being sent by another process; leaving it", *condition.key
                )
            if action is not None and await self._remind(sink, guild_id, condition, action, now):
                sent += 1
        return sent

    async def _whole(self, guild_id: int, condition: Condition) -> Condition:
        """``condition`` with its release's whole view (members and all), for the words."""
        if condition.release is None:
            return condition
        async with self.db.read() as session:
            release = await require_release(session, guild_id, condition.release.slug)
            return replace(condition, release=await load_release_view(session, release))

    async def _remind(
        self,
        sink: ReminderSink,
        guild_id: int,
        condition: Condition,
        action: Action,
        now: datetime,
    ) -> bool:
        """One reminder, exactly once: looked for first when one may be in Discord already,
        recorded as intended, sent, recorded as sent. Whether one was sent now."""
        key = (guild_id, condition.kind, condition.subject)
        missing: str | None = None
        if action == "look":
            said = (await self.said(guild_id)).get(condition.key)
            if said is None or said.intent_text is None:
                return False
            if await sink.reminded(guild_id, condition.release, marker(said.intent_text)):
                await self._found(key, said.intent_text)
                log.info("reminder of %s %s found sent before a crash", *condition.key)
                return False
            missing = said.intent_text
        who = await sink.operators(guild_id)
        condition = await self._whole(guild_id, condition)
        async with self.db.write() as session:
            row = await session.get(Reminder, key)
            current = _said(row) if row is not None else None
            # Decided again under the write lock: another process may have taken it since.
            again = due(condition, current, now)
            if again is None or (again == "look" and (row is None or row.intent_text != missing)):
                log.info(
                    "reminder of %s %s is being sent by another process, or was; leaving it",
                    *condition.key,
                )
                return False
            if row is None:
                row = Reminder(
                    guild_id=guild_id, kind=condition.kind, subject=condition.subject, count=0
                )
                session.add(row)
            if row.since != condition.since:  # a new episode: counted afresh
                row.since, row.count, row.last_sent_at = condition.since, 0, None
            text = reminder_text(condition, number=row.count + 1, now=now, who=who)
            row.intent_at, row.intent_text, row.failed_at = now, text, None
        posted = await sink.remind(guild_id, condition.release, text)
        async with self.db.write() as session:
            row = await session.get(Reminder, key)
            if row is None or row.intent_text != text:
                return posted  # the condition cleared meanwhile; nothing left to record
            if posted:
                row.count += 1
                row.last_sent_at = row.intent_at
            else:
                row.failed_at = now
            row.intent_at = row.intent_text = None
        if posted:
            log.info("reminder %d of %s %s sent", row.count, *condition.key)
        else:
            log.warning("reminder of %s %s not posted; tried again later", *condition.key)
        return posted

    async def _found(self, key: tuple[int, ReminderKind, str], text: str) -> None:
        """The reminder being sent when the process stopped is in Discord: record it sent."""
        async with self.db.write() as session:
            row = await session.get(Reminder, key)
            if row is not None and row.intent_text == text:
                row.count += 1
                row.last_sent_at = row.intent_at
                row.intent_at = row.intent_text = None

    async def _forget(self, guild_id: int, keys: Iterable[tuple[ReminderKind, str]]) -> None:
        """The conditions cleared: what was said about them goes too."""
        async with self.db.write() as session:
            for kind, subject in keys:
                await session.execute(
                    delete(Reminder).where(
                        Reminder.guild_id == guild_id,
                        Reminder.kind == kind,
                        Reminder.subject == subject,
                    )
                )


def _in_flight(condition: Condition, said: Said | None, now: datetime) -> bool:
    """Whether a reminder of ``condition`` is being sent now (its intent recorded less than
    :data:`IN_FLIGHT` ago, by another process: a process sends its own to the end)."""
    return (
        said is not None
        and said.since == condition.since
        and said.intent_at is not None
        and now - said.intent_at < IN_FLIGHT
    )


async def _untouched_since(session: AsyncSession, release: Release) -> datetime:
    """When the release was last touched: opened, assembled, its RC tests run, a member
    added (the member's move) or removed (a move recorded on the release)."""
    joined = select(func.max(Task.state_since)).where(Task.release_id == release.id)
    moved = select(func.max(StageEvent.at)).where(StageEvent.release_id == release.id)
    latest = (
        await session.execute(select(joined.scalar_subquery(), moved.scalar_subquery()))
    ).one()
    moments = [release.opened_at, release.assembled_at, release.rc_tests_at, *latest]
    return max(m for m in moments if m is not None)


async def _said_in(session: AsyncSession, guild_id: int) -> dict[tuple[ReminderKind, str], Said]:
    rows = await session.scalars(select(Reminder).where(Reminder.guild_id == guild_id))
    return {(r.kind, r.subject): _said(r) for r in rows}
