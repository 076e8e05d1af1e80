"""A task's conversation on its review requests: members' replies kept, a ❌'s reason tied to
its move, and the conversation read back with the handoffs' notes, a page at a time.

A reply is tied to the ❌ that sent the task back in either order: the reviewer's latest reply
in the round when the ❌ lands (:func:`give_reason`, inside the reaction's transaction), or
their first reply to that request after it (:meth:`Replies.keep`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Integer, bindparam, delete, exists, select, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute

from conductor.states import CommentKind, ReviewStatus
from conductor.views import (
    ConversationEntry,
    ConversationPage,
    EntryCursor,
    EntryKind,
    IncomingReply,
    ReplyResult,
)
from store.models import HandoffMessage, ReviewRequest, StageEvent, Task, TaskComment
from store.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from store.db import Database, Session

log = logging.getLogger(__name__)

#: the trigger of a ❌'s move back to building (``conductor.machines``)
REQUEST_CHANGES = "request_changes"
#: where each source sorts among entries of the same instant
NOTE, COMMENT = 0, 1
_KIND: dict[CommentKind, EntryKind] = {
    CommentKind.REPLY: "reply",
    CommentKind.REASON: "reason",
    CommentKind.REBID: "rebid",
}


class Replies:
    """Members' messages on review requests, kept as the task's conversation."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def keep(self, reply: IncomingReply) -> ReplyResult:
        """Keep a reply to a review request (or a message in its thread) as kind ``reply``,
        or ``reason`` when its author's ❌ on that request sent the task back and that move
        has no reason yet. The same message twice is one entry; a message answering no
        review request is not kept."""
        async with self.db.write() as session:
            if await session.scalar(
                select(TaskComment.id).where(TaskComment.message_id == reply.message_id)
            ):
                return ReplyResult(False, "already kept", duplicate=True)
            request = await session.scalar(
                select(ReviewRequest)
                .where(
                    ReviewRequest.guild_id == reply.guild_id,
                    ReviewRequest.message_id.in_(reply.targets),
                )
                .order_by(ReviewRequest.id.desc())
                .limit(1)
            )
            if request is None:
                return ReplyResult(False, "not an answer to a review request")
            slug = await session.scalar(select(Task.slug).where(Task.id == request.task_id))
            move = await _unexplained_rejection(session, request, reply.author_id)
            kind = CommentKind.REPLY if move is None else CommentKind.REASON
            session.add(
                TaskComment(
                    guild_id=reply.guild_id,
                    task_id=request.task_id,
                    kind=kind,
                    author=reply.author_name[:100],
                    author_id=reply.author_id,
                    channel_id=reply.channel_id,
                    message_id=reply.message_id,
                    text=reply.text,
                    at=utcnow(),
                    stage_event_id=move,
                    request_id=request.id,
                )
            )
            return ReplyResult(True, f"kept as {kind.value}", task_slug=slug, kind=kind)

    async def edited(self, message_id: int, text: str) -> bool:
        """A kept message edited: its text follows. False when it was not kept."""
        async with self.db.write() as session:
            result = await session.execute(
                update(TaskComment)
                .where(TaskComment.message_id == message_id)
                .values(text=text)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    async def deleted(self, message_ids: set[int]) -> int:
        """Kept messages deleted in Discord leave the conversation (a reason too: its move
        reads as a plain ❌ again). How many were kept."""
        async with self.db.write() as session:
            result = await session.execute(
                delete(TaskComment)
                .where(TaskComment.message_id.in_(message_ids))
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)


async def _unexplained_rejection(
    session: Session, request: ReviewRequest, author_id: int
) -> int | None:
    """The move back to building that ``author_id``'s ❌ on ``request`` made, when it has no
    reason yet (the reviewer reacted first, then typed)."""
    if request.status is not ReviewStatus.CHANGES_REQUESTED or request.closed_at is None:
        return None
    explained = exists().where(TaskComment.stage_event_id == StageEvent.id)
    return await session.scalar(
        select(StageEvent.id)
        .where(
            StageEvent.task_id == request.task_id,
            StageEvent.trigger == REQUEST_CHANGES,
            StageEvent.actor_id == author_id,
            StageEvent.at >= request.created_at,
            StageEvent.at <= request.closed_at,
            ~explained,
        )
        .order_by(StageEvent.id.desc())
        .limit(1)
    )


async def give_reason(session: Session, request: ReviewRequest, reviewer_id: int) -> bool:
    """Just after a ❌ sent ``request``'s task back (its move queued in ``session``): the
    reviewer's latest reply to this round's request, if any, becomes the move's reason (a
    late reply to an earlier round's request stays a reply). One query when
    there is none (the usual ❌), a flush and two more when there is."""
    reply = await session.scalar(
        select(TaskComment)
        .where(
            TaskComment.task_id == request.task_id,
            TaskComment.request_id == request.id,
            TaskComment.kind == CommentKind.REPLY,
            TaskComment.author_id == reviewer_id,
        )
        .order_by(TaskComment.at.desc(), TaskComment.id.desc())
        .limit(1)
    )
    if reply is None:
        return False
    await session.flush()  # the move is a deferred insert: written now to know its id
    move = await session.scalar(
        select(StageEvent.id)
        .where(StageEvent.task_id == request.task_id, StageEvent.trigger == REQUEST_CHANGES)
        .order_by(StageEvent.id.desc())
        .limit(1)
    )
    reply.kind, reply.stage_event_id = CommentKind.REASON, move
    return True


# ---------------------------------------------------------------- reading


def _before(
    cursor: EntryCursor | None,
    source: int,
    at: InstrumentedAttribute[datetime],
    id_: InstrumentedAttribute[int],
) -> ColumnElement[bool] | None:
    """Rows of ``source`` that sort before ``cursor`` (time, source, id)."""
    if cursor is None:
        return None
    when = bindparam(f"before_at_{source}", cursor.at, type_=UTCDateTime())
    if source < cursor.source:
        return at <= when
    if source > cursor.source:
        return at < when
    return tuple_(at, id_) < tuple_(when, bindparam(f"before_id_{source}", cursor.id, Integer()))


async def conversation(
    session: Session, task_id: int, *, before: EntryCursor | None, size: int
) -> ConversationPage:
    """The newest ``size`` entries of a task's conversation before ``before`` (the handoffs'
    notes and the comments, merged by time), oldest first. Two index reads of ``size + 1``
    rows each, however long the conversation."""
    notes = (
        select(HandoffMessage.id, HandoffMessage.received_at, HandoffMessage.author_name)
        .add_columns(HandoffMessage.note, StageEvent.to_state)
        .outerjoin(StageEvent, StageEvent.handoff_message_id == HandoffMessage.message_id)
        .where(HandoffMessage.task_id == task_id, HandoffMessage.note.is_not(None))
    )
    condition = _before(before, NOTE, HandoffMessage.received_at, HandoffMessage.id)
    if condition is not None:
        notes = notes.where(condition)
    notes = notes.order_by(HandoffMessage.received_at.desc(), HandoffMessage.id.desc())
    comments = select(TaskComment).where(TaskComment.task_id == task_id)
    condition = _before(before, COMMENT, TaskComment.at, TaskComment.id)
    if condition is not None:
        comments = comments.where(condition)
    comments = comments.order_by(TaskComment.at.desc(), TaskComment.id.desc())
    entries = [
        ConversationEntry(
            kind="note",
            author_name=author,
            at=at,
            text=note or "",
            cursor=EntryCursor(at, NOTE, id_),
            to_state=to,
        )
        for id_, at, author, note, to in (await session.execute(notes.limit(size + 1))).all()
    ]
    entries += [
        ConversationEntry(
            kind=_KIND[c.kind],
            author_name=c.author,
            at=c.at,
            text=c.text,
            cursor=EntryCursor(c.at, COMMENT, c.id),
        )
        for c in await session.scalars(comments.limit(size + 1))
    ]
    entries.sort(key=lambda e: (e.cursor.at, e.cursor.source, e.cursor.id), reverse=True)
    return ConversationPage(tuple(reversed(entries[:size])), more=len(entries) > size)
