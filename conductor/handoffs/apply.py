"""Applying handoffs: raw message first, then the task's move, many messages per transaction.

A busy guild's agents post in bursts. :class:`HandoffQueue` hands whatever has queued up to
:func:`apply_batch`, which applies the whole batch in one write transaction (one task query,
one flush, one commit) in arrival order. A lone message is a batch of one. Each message's raw
row commits together with its outcome, so nothing is half-applied and nothing is lost.

Each handoff channel has a cursor (``handoff_cursors``): every message up to it is stored. It
moves in the same transaction as the messages it passes, and only over messages stored in
order: those the catch-up reads back from the channel's history, and live ones once the
channel is in sync. When the database cannot take a write (busy, full, read-only, its file
gone), the channel falls behind: its live messages are not tried again but wait for the
catch-up, which reads everything after the cursor back once the database takes writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import joinedload

from conductor.batching import MAX_BATCH, GroupCommit, turns
from conductor.handoffs.parse import HandoffParseError, ParsedHandoff, parse_handoff
from conductor.machines import HANDOFF_TRIGGERS, Move, TaskFlow
from conductor.queries import dependency_views, review_view, task_view
from conductor.reviews.rules import LIVE_REVIEW
from conductor.states import BidRole, CommentKind, HandoffOutcome, ReviewStatus, Size, TaskState
from conductor.text import storable
from conductor.views import HandoffResult, IncomingMessage
from store.db import Session
from store.errors import DatabaseUnavailable
from store.models import (
    HandoffCursor,
    HandoffMessage,
    ReviewRequest,
    Task,
    TaskBid,
    TaskComment,
    TaskDependency,
)
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

# Why a handoff can never name these states, in the words a user needs.
_NOT_BY_HANDOFF = {
    TaskState.CREATED: "a task can't go back to created",
    TaskState.REVIEWED: "reviewed is reached by teammates' ✅ approvals, never by a handoff",
    TaskState.ASSEMBLED: "only `/release add` puts a task on a release",
    TaskState.SHIPPED: "a task ships only when its release ships",
}

Parsed = ParsedHandoff | HandoffParseError
#: a handoff channel: (guild id, channel id)
ChannelKey = tuple[int, int]


def _channel(message: IncomingMessage) -> ChannelKey:
    return message.guild_id, message.channel_id


def handoff_refusal(parsed: ParsedHandoff, current: TaskState) -> str | None:
    """Why the machine would refuse this handoff, decided before anything is written."""
    if parsed.target is current:
        return None
    if parsed.target not in HANDOFF_TRIGGERS:
        return (
            f"Task `{parsed.slug}` is {current.value}; a handoff can't move it to "
            f"{parsed.target.value}: {_NOT_BY_HANDOFF[parsed.target]}."
        )
    return TaskFlow.refusal_for(parsed.slug, current, HANDOFF_TRIGGERS[parsed.target])


def raw_values(
    message: IncomingMessage,
    outcome: HandoffOutcome,
    *,
    error: str | None = None,
    note: str | None = None,
) -> dict[str, object]:
    """The raw row of a message: kept whatever became of it."""
    return {
        "guild_id": message.guild_id,
        "channel_id": message.channel_id,
        "message_id": message.message_id,
        "author_id": message.author_id,
        "author_name": message.author_name[:100],
        "author_kind": message.author_kind,
        "text": message.text,
        "received_at": utcnow(),
        "outcome": outcome,
        "error": error,
        "note": note,
        "task_id": None,
    }


def _keep(session: Session, values: dict[str, object], task: Task | None = None) -> None:
    """Queue the raw row for the batch's bulk insert (the task id is read after the flush)."""
    if task is None:
        session.defer_insert(HandoffMessage, lambda: values)
    else:
        session.defer_insert(HandoffMessage, lambda: {**values, "task_id": task.id})


def update_task_fields(task: Task, parsed: ParsedHandoff) -> None:
    """A handoff's headers update the task; a header left out keeps what the task has."""
    if parsed.title is not None:
        task.title = parsed.title
    if parsed.kind is not None:
        task.kind = parsed.kind
    if parsed.branch is not None:
        task.branch = parsed.branch
    if parsed.depends_on is not None and list(parsed.depends_on) != task.dependency_slugs:
        task.dependencies = [
            TaskDependency(depends_on=s, position=i) for i, s in enumerate(parsed.depends_on)
        ]
    if parsed.metadata:
        task.extra = {**(task.extra or {}), **dict(parsed.metadata)}


@dataclass(slots=True)
class _Applied:
    """A message applied in this batch; its view is built after the flush gives ids."""

    task: Task
    outcome: HandoffOutcome
    moved_from: TaskState | None = None
    review: ReviewRequest | None = None


async def apply_batch(
    session: Session,
    messages: Sequence[IncomingMessage],
    parsed: Sequence[Parsed],
    *,
    required: int,
) -> list[HandoffResult]:
    """Apply ``messages`` in order inside the caller's write transaction."""
    return await _Batch(session, required).run(messages, parsed)


class _Batch:
    """One write transaction's worth of handoffs."""

    def __init__(self, session: Session, required: int) -> None:
        self.session = session
        self.required = required
        self.tasks: dict[tuple[int, str], Task] = {}
        self.rounds: dict[tuple[int, str], int] | None = None
        #: each task's developer bid (the first ``size:``), read at the batch's first size
        self.dev_bids: dict[tuple[int, str], Size] | None = None

    async def run(
        self, messages: Sequence[IncomingMessage], parsed: Sequence[Parsed]
    ) -> list[HandoffResult]:
        stored = await self._stored({m.message_id for m in messages})
        self.tasks = await _load_tasks(self.session, messages, parsed)
        slots: list[HandoffResult | _Applied | int] = []  # an int points at an earlier slot
        first_slot: dict[int, int] = {}
        async for message, item in turns(zip(messages, parsed, strict=True)):
            if message.message_id in stored:
                slots.append(stored[message.message_id])
            elif message.message_id in first_slot:  # the same message twice in one batch
                slots.append(first_slot[message.message_id])
            else:
                first_slot[message.message_id] = len(slots)
                slots.append(await self._one(message, item))
        await self.session.flush()
        return await _results(self.session, slots)

    async def _stored(self, message_ids: set[int]) -> dict[int, HandoffResult]:
        rows = await self.session.execute(
            select(HandoffMessage.message_id, HandoffMessage.outcome, HandoffMessage.error).where(
                HandoffMessage.message_id.in_(message_ids)
            )
        )
        return {
            row.message_id: HandoffResult(outcome=row.outcome, error=row.error, duplicate=True)
            for row in rows
        }

    async def _one(self, message: IncomingMessage, item: Parsed) -> HandoffResult | _Applied:
        if isinstance(item, HandoffParseError):
            ignored = item.kind == "not_a_handoff"
            outcome = HandoffOutcome.IGNORED if ignored else HandoffOutcome.REJECTED
            _keep(self.session, raw_values(message, outcome, error=str(item)))
            return HandoffResult(outcome=outcome, error=str(item))
        key = (message.guild_id, item.slug)
        task = self.tasks.get(key)
        refusal = handoff_refusal(item, task.state if task else TaskState.CREATED)
        if refusal is not None:
            _keep(self.session, raw_values(message, HandoffOutcome.REJECTED, error=refusal))
            return HandoffResult(outcome=HandoffOutcome.REJECTED, error=refusal)
        now = utcnow()
        if task is None:
            task = self.tasks[key] = self._new_task(message, item, now)
        raw = raw_values(message, HandoffOutcome.NOTED, note=item.note or None)
        _keep(self.session, raw, task)
        update_task_fields(task, item)
        if item.size is not None:
            await self._dev_bid(message, task, item.size, now)
        applied = _Applied(task, HandoffOutcome.NOTED)
        if item.target is task.state:
            return applied  # a progress note: fields and note kept, no move
        applied.moved_from = task.state
        move = Move(
            actor=message.author_name[:100],
            actor_id=message.author_id,
            model=item.model,
            tokens=item.tokens,
            cost=item.cost,
            handoff_message_id=message.message_id,
            at=now,
        )
        await TaskFlow(task, self.session).fire(HANDOFF_TRIGGERS[item.target], move)
        raw["outcome"] = applied.outcome = HandoffOutcome.APPLIED
        if applied.moved_from in (TaskState.SUBMITTED, TaskState.REVIEWED):
            await _close_reviews(self.session, task, move.actor)
        if task.state is TaskState.SUBMITTED:
            task.author_id = message.author_id
            task.author_name = message.author_name[:100]
            applied.review = await self._open_review(key, task)
        return applied

    async def _dev_bid(
        self, message: IncomingMessage, task: Task, size: Size, now: datetime
    ) -> None:
        """The developer's sealed bid: the first ``size:`` of the task's handoffs counts; a
        later different one is kept in the task's conversation as a re-bid, never replacing
        it (nor is a first one given after the ship counted)."""
        if self.dev_bids is None:
            self.dev_bids = await _dev_bids(self.session, self.tasks)
        key = (task.guild_id, task.slug)
        first = self.dev_bids.get(key)
        author = message.author_name[:100]
        if first is None and task.state is not TaskState.SHIPPED:
            self.dev_bids[key] = size
            bid = {
                "role": BidRole.DEV,
                "size": size,
                "bidder": author,
                "bidder_id": message.author_id,
                "at": now,
            }
            self.session.defer_insert(TaskBid, lambda: {**bid, "task_id": task.id})
            return
        if first is size:
            return
        text = (
            f"re-bid {size} (the first bid, {first}, stands)"
            if first is not None
            else f"bid {size} after the ship (not counted)"
        )
        comment = {
            "guild_id": task.guild_id,
            "kind": CommentKind.REBID,
            "author": author,
            "author_id": message.author_id,
            "channel_id": message.channel_id,
            "message_id": message.message_id,
            "text": text,
            "at": now,
        }
        self.session.defer_insert(TaskComment, lambda: {**comment, "task_id": task.id})

    def _new_task(self, message: IncomingMessage, item: ParsedHandoff, now: datetime) -> Task:
        task = Task(
            guild_id=message.guild_id,
            slug=item.slug,
            title=item.title or item.slug,
            kind=item.kind or "",
            branch=item.branch,
            state=TaskState.CREATED,
            author_id=message.author_id,
            author_name=message.author_name[:100],
            extra={},
            created_at=now,
            state_since=now,
            dependencies=[],
        )
        self.session.add(task)
        return task

    async def _open_review(self, key: tuple[int, str], task: Task) -> ReviewRequest:
        if self.rounds is None:
            self.rounds = await _last_rounds(self.session, self.tasks)
        self.rounds[key] = self.rounds.get(key, 0) + 1
        request = ReviewRequest(
            guild_id=task.guild_id,
            task=task,
            round=self.rounds[key],
            status=ReviewStatus.OPEN,
            required=self.required,
            author_id=task.author_id,
            approvals=[],
        )
        self.session.add(request)
        return request


async def _load_tasks(
    session: Session, messages: Sequence[IncomingMessage], parsed: Sequence[Parsed]
) -> dict[tuple[int, str], Task]:
    by_guild: dict[int, set[str]] = {}
    for message, item in zip(messages, parsed, strict=True):
        if isinstance(item, ParsedHandoff):
            by_guild.setdefault(message.guild_id, set()).add(item.slug)
    if not by_guild:
        return {}
    rows = await session.scalars(
        select(Task)
        .where(or_(*(and_(Task.guild_id == g, Task.slug.in_(s)) for g, s in by_guild.items())))
        .options(joinedload(Task.dependencies))
    )
    return {(t.guild_id, t.slug): t for t in rows.unique()}


async def _dev_bids(
    session: Session, tasks: dict[tuple[int, str], Task]
) -> dict[tuple[int, str], Size]:
    by_id = {t.id: key for key, t in tasks.items() if t.id is not None}
    if not by_id:
        return {}
    rows = await session.execute(
        select(TaskBid.task_id, TaskBid.size).where(
            TaskBid.task_id.in_(by_id), TaskBid.role == BidRole.DEV
        )
    )
    return {by_id[task_id]: size for task_id, size in rows}


async def _last_rounds(
    session: Session, tasks: dict[tuple[int, str], Task]
) -> dict[tuple[int, str], int]:
    by_id = {t.id: key for key, t in tasks.items() if t.id is not None}
    if not by_id:
        return {}
    rows = await session.execute(
        select(ReviewRequest.task_id, func.max(ReviewRequest.round))
        .where(ReviewRequest.task_id.in_(by_id))
        .group_by(ReviewRequest.task_id)
    )
    return {by_id[task_id]: last for task_id, last in rows}


async def _close_reviews(session: Session, task: Task, by: str) -> None:
    """A task sent back to building: its live review requests are superseded."""
    if task.id is None:
        await session.flush()  # a task created earlier in this batch
    requests = await session.scalars(
        select(ReviewRequest).where(
            ReviewRequest.task_id == task.id, ReviewRequest.status.in_(LIVE_REVIEW)
        )
    )
    at = utcnow()
    for request in requests:
        request.status, request.closed_at, request.closed_by = ReviewStatus.SUPERSEDED, at, by


async def _results(
    session: Session, slots: list[HandoffResult | _Applied | int]
) -> list[HandoffResult]:
    applied = [s for s in slots if isinstance(s, _Applied)]
    deps = {}
    for guild_id in {a.task.guild_id for a in applied}:
        deps.update(
            await dependency_views(
                session, guild_id, [a.task for a in applied if a.task.guild_id == guild_id]
            )
        )
    results: list[HandoffResult] = []
    for slot in slots:
        if isinstance(slot, int):
            first = results[slot]
            results.append(HandoffResult(outcome=first.outcome, error=first.error, duplicate=True))
        elif isinstance(slot, _Applied):
            results.append(
                HandoffResult(
                    outcome=slot.outcome,
                    task=task_view(slot.task, deps[slot.task.id]),
                    moved_from=slot.moved_from,
                    review=review_view(slot.review, slot.task) if slot.review else None,
                    in_release=slot.task.release_id is not None,
                )
            )
        else:
            results.append(slot)
    return results


@dataclass(slots=True)
class _Behind:
    """A channel whose messages the database could not take: its live messages wait for the
    catch-up, which reads them back in order after the channel's cursor."""

    #: the oldest and newest message not stored
    first: int
    last: int
    #: why, as it was last seen
    error: DatabaseUnavailable
    #: messages noted so far, and how many there were when a catch-up last ended short
    noted: int = 1
    looked: int = 0

    def note(self, message_id: int, error: DatabaseUnavailable | None = None) -> None:
        self.first, self.last = min(self.first, message_id), max(self.last, message_id)
        self.noted += 1
        if error is not None:
            self.error = error


async def _move_cursor(session: Session, channel: ChannelKey, message_id: int) -> None:
    """Move the channel's cursor forward to ``message_id`` (never back)."""
    guild_id, channel_id = channel
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(HandoffCursor).values(
        guild_id=guild_id, channel_id=channel_id, message_id=message_id, updated_at=utcnow()
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[HandoffCursor.guild_id, HandoffCursor.channel_id],
            set_={
                "message_id": statement.excluded.message_id,
                "updated_at": statement.excluded.updated_at,
            },
            where=HandoffCursor.message_id < statement.excluded.message_id,
        )
    )


class HandoffApplier:
    """Applies batches on the database, falling back to one message at a time if a batch
    fails, so one bad message never takes its neighbours down with it. A database that
    cannot take the batch at all fails it whole, and its channels fall behind."""

    def __init__(self, db: Database, *, required_approvals: int) -> None:
        self.db = db
        self.required_approvals = required_approvals
        #: channels whose live messages wait for the catch-up (the database failed them)
        self.behind: dict[ChannelKey, _Behind] = {}
        #: channels caught up in this process: their live messages move the cursor. Until
        #: then (a start, an outage) only the catch-up moves it, reading history in order.
        self.synced: set[ChannelKey] = set()

    async def apply(self, messages: Sequence[IncomingMessage]) -> list[HandoffResult | Exception]:
        # Every message is stored raw, whatever its characters (a lone surrogate included).
        messages = [
            replace(m, text=storable(m.text), author_name=storable(m.author_name)) for m in messages
        ]
        results: list[HandoffResult | Exception | None] = [None] * len(messages)
        tried: list[int] = []
        for i, message in enumerate(messages):
            behind = None if message.replay else self.behind.get(_channel(message))
            if behind is None:
                tried.append(i)
            else:  # the catch-up reads it back in its turn
                behind.note(message.message_id)
                results[i] = behind.error.again()
        if tried:
            outcomes = await self._apply([messages[i] for i in tried])
            for i, outcome in zip(tried, outcomes, strict=True):
                results[i] = outcome
        return [r for r in results if r is not None]

    async def _apply(self, messages: Sequence[IncomingMessage]) -> list[HandoffResult | Exception]:
        parsed = [_parse(m.text) for m in messages]
        try:
            async with self.db.write() as session:
                results = await apply_batch(
                    session, messages, parsed, required=self.required_approvals
                )
                moved = await self._advance(session, messages)
        except DatabaseUnavailable as down:
            # Not one message's fault: trying them one by one would only wait again.
            self._fall_behind(messages, down)
            return [down.again() for _ in messages]
        except Exception as error:
            if len(messages) > 1:
                log.warning(
                    "handoff batch of %d failed (%r); applying one by one", len(messages), error
                )
                return [(await self.apply([m]))[0] for m in messages]
            return [await self._keep_raw(messages[0], error)]
        self._passed(moved)
        for result in results:
            if result.task is not None and not result.duplicate:
                log.info(
                    "handoff %s task=%s %s→%s", result.outcome.value, result.task.slug,
                    result.moved_from.value if result.moved_from else "-", result.task.state.value,
                )  # fmt: skip
        return list(results)

    async def _advance(
        self, session: Session, messages: Sequence[IncomingMessage]
    ) -> dict[ChannelKey, int]:
        """Move each channel's cursor over the messages stored in this transaction: those the
        catch-up read back, and live ones of a channel in sync. Returns where they went."""
        newest: dict[ChannelKey, int] = {}
        for message in messages:
            channel = _channel(message)
            if message.replay or channel in self.synced:
                newest[channel] = max(newest.get(channel, 0), message.message_id)
        for channel, message_id in newest.items():
            await _move_cursor(session, channel, message_id)
        return newest

    def _passed(self, moved: dict[ChannelKey, int]) -> None:
        """The cursors moved (committed): a channel behind is now behind from there on."""
        for channel, message_id in moved.items():
            behind = self.behind.get(channel)
            if behind is not None:
                behind.first = max(behind.first, message_id + 1)

    def _fall_behind(self, messages: Sequence[IncomingMessage], down: DatabaseUnavailable) -> None:
        for message in messages:
            channel = _channel(message)
            self.synced.discard(channel)
            behind = self.behind.get(channel)
            if behind is not None:
                behind.note(message.message_id, down)
                continue
            self.behind[channel] = _Behind(message.message_id, message.message_id, down)
            log.warning(
                "handoffs of channel %s wait for the database (%s): the catch-up reads them "
                "back from message %s on",
                message.channel_id,
                down.reason,
                message.message_id,
            )

    async def _keep_raw(self, message: IncomingMessage, error: Exception) -> Exception:
        """A failure that is not a refusal (a bug): keep the raw message as pending if it is
        not stored yet, so it can be replayed, and log the traceback. Returns what the
        message's result is: the error, or the database's when it could not be kept."""
        log.error(
            "handoff failed guild=%s message=%s",
            message.guild_id,
            message.message_id,
            exc_info=error,
        )
        try:
            async with self.db.write() as session:
                exists = await session.scalar(
                    select(HandoffMessage.id).where(HandoffMessage.message_id == message.message_id)
                )
                if exists is None:
                    session.add(
                        HandoffMessage(
                            **raw_values(message, HandoffOutcome.PENDING, error="internal error")
                        )
                    )
                moved = await self._advance(session, [message])
        except DatabaseUnavailable as down:
            self._fall_behind([message], down)
            return down.again()
        except Exception:
            log.exception("could not keep raw handoff message=%s", message.message_id)
        else:
            self._passed(moved)
        return error


def _parse(text: str) -> Parsed:
    try:
        return parse_handoff(text)
    except HandoffParseError as error:
        return error


class HandoffQueue(GroupCommit[IncomingMessage, HandoffResult]):
    """The group-commit front door for a busy handoff listener (see :mod:`conductor.batching`)."""

    def __init__(self, applier: HandoffApplier, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__(applier.apply, max_batch=max_batch, name="handoff-drainer")


class Handoffs:
    """Handoffs as a service: one message applied on its own, many through the group commit
    (a busy listener), and the catch-up: where it starts, and when a channel is in sync."""

    def __init__(self, db: Database, *, required_approvals: int) -> None:
        if required_approvals < 1:
            raise ValueError("required_approvals must be at least 1")
        self.db = db
        self.applier = HandoffApplier(db, required_approvals=required_approvals)
        self.queue = HandoffQueue(self.applier)

    async def apply(self, message: IncomingMessage) -> HandoffResult:
        """Store one message raw, then parse and apply it. Idempotent per message id: the
        second time changes nothing. Raises :class:`~store.errors.DatabaseUnavailable` when
        the database could not take it (or its channel waits for the catch-up)."""
        [result] = await self.applier.apply([message])
        if isinstance(result, Exception):
            raise result
        return result

    async def submit(self, message: IncomingMessage) -> HandoffResult:
        """Apply a message together with whatever else has queued (one transaction)."""
        return await self.queue.submit(message)

    async def drain(self) -> None:
        """Wait until every submitted message is applied (before the process stops)."""
        await self.queue.drain()

    async def catch_up_from(self, guild_id: int, channel_id: int, *, newest: int) -> int:
        """Where the catch-up of a channel reads Discord's history after: its cursor. A
        channel with none yet gets one at ``newest`` (its newest message now: what came
        before was never this bot's to read), unless its first messages already failed."""
        channel = (guild_id, channel_id)
        behind = self.applier.behind.get(channel)
        async with self.db.read() as session:
            cursor = await session.scalar(_cursor_of(channel))
        if cursor is not None:
            return cursor if behind is None else min(cursor, behind.first - 1)
        if behind is not None:
            return behind.first - 1
        async with self.db.write() as session:
            cursor = await session.scalar(_cursor_of(channel))
            if cursor is None:
                await _move_cursor(session, channel, newest)
                cursor = newest
        return cursor

    def waiting(self, guild_id: int, channel_id: int) -> DatabaseUnavailable | None:
        """Why the channel's messages wait for the catch-up, or None when they don't."""
        behind = self.applier.behind.get((guild_id, channel_id))
        return behind.error if behind is not None else None

    def resync(self) -> None:
        """Discord's events may have been missed (the gateway dropped): every channel is read
        back after its cursor before its live messages move the cursor again."""
        self.applier.synced.clear()

    def in_sync(self, guild_id: int, channel_id: int) -> bool:
        """Whether the channel was caught up in this process and nothing failed since."""
        return (guild_id, channel_id) in self.applier.synced

    def caught_up(self, guild_id: int, channel_id: int, *, through: int) -> bool:
        """The catch-up stored the channel's history through message ``through``: the
        channel is in sync again, unless newer messages failed meanwhile (False: read on)."""
        channel = (guild_id, channel_id)
        behind = self.applier.behind.get(channel)
        if behind is not None:
            # Short of the newest failure: read on. A whole round without a new failure,
            # though, read every message that failed before it (or it was deleted).
            if behind.last > through and behind.noted != behind.looked:
                behind.looked = behind.noted
                return False
            del self.applier.behind[channel]
            log.info("handoffs of channel %s are caught up through %s", channel_id, through)
        self.applier.synced.add(channel)
        return True


def _cursor_of(channel: ChannelKey) -> Select[int]:
    guild_id, channel_id = channel
    return select(HandoffCursor.message_id).where(
        HandoffCursor.guild_id == guild_id, HandoffCursor.channel_id == channel_id
    )
