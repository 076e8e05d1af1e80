"""Tasks as the team reads them: the list by state, the task card, the timeline.

Tasks change only through handoffs (``conductor.handoffs``), reviews (``conductor.reviews``) and
releases (``conductor.releases``); this module only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Select, bindparam, func, or_, select, tuple_
from sqlalchemy.orm import aliased, joinedload, selectinload

from conductor.queries import dependency_views, require_task, review_view, task_view, timeline
from conductor.reviews.conversation import conversation
from conductor.sizing import load_bids, sizing_view
from conductor.states import TaskState
from conductor.views import (
    ConversationPage,
    EntryCursor,
    NoteView,
    StageView,
    TaskCard,
    TaskCursor,
    TaskPage,
    TaskView,
)
from store.models import HandoffMessage, ReviewRequest, StageEvent, Task
from store.types import UTCDateTime

if TYPE_CHECKING:
    from store.db import Database


#: tasks on one page of ``/task list``
PAGE_SIZE = 20
#: the newest entries of the conversation read for the card (it shows those that fit)
CARD_ENTRIES = 10
#: entries on one earlier page of the conversation
CONVERSATION_PAGE = 20
#: the most choices an autocomplete offers (Discord's limit)
SUGGESTIONS = 25
#: a title or a slug's middle is searched among this many of the most recently changed
#: tasks only: a search of every title would read the whole table (slugs are searched by
#: prefix in all of them, through the index)
SEARCH_WINDOW = 500


def _newest_first(guild_id: int, state: TaskState | None) -> Select[Task]:
    """The guild's tasks (in ``state``), most recently changed first: read in the order of
    the index ``(guild_id, updated_at, id)`` or ``(guild_id, state, updated_at, id)``."""
    query = select(Task).where(Task.guild_id == guild_id)
    if state is not None:
        query = query.where(Task.state == state)
    return query.order_by(Task.updated_at.desc(), Task.id.desc())


class Tasks:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(
        self,
        guild_id: int,
        state: TaskState | None = None,
        *,
        after: TaskCursor | None = None,
        size: int = PAGE_SIZE,
    ) -> TaskPage:
        """One page of the guild's tasks (in ``state``), most recently changed first,
        starting after ``after``: one seek in an index and ``size`` rows read, however many
        tasks there are."""
        async with self.db.read() as session:
            query = _newest_first(guild_id, state)
            if after is not None:
                query = query.where(
                    tuple_(Task.updated_at, Task.id)
                    < tuple_(
                        bindparam("after_at", after.updated_at, type_=UTCDateTime()),
                        bindparam("after_id", after.id),
                    )
                )
            query = query.options(selectinload(Task.dependencies), joinedload(Task.release))
            query = query.limit(size + 1)
            rows = list((await session.scalars(query)).all())
            tasks, more = rows[:size], len(rows) > size
            deps = await dependency_views(session, guild_id, tasks)
            return TaskPage(
                tasks=tuple(task_view(t, deps[t.id]) for t in tasks),
                cursors=tuple(TaskCursor(t.updated_at, t.id) for t in tasks),
                more=more,
            )

    async def suggest(
        self, guild_id: int, typed: str, state: TaskState | None = None
    ) -> tuple[TaskView, ...]:
        """Up to 25 tasks (in ``state``) for an autocomplete: nothing typed, the most
        recently changed; else those whose slug starts with it (any task, through the
        index), then those whose slug or title contains it among the
        :data:`SEARCH_WINDOW` most recently changed. Each query reads a bounded number of
        rows, however many tasks there are."""
        needle = typed.strip().lower()
        async with self.db.read() as session:
            if not needle:
                newest = await session.scalars(_newest_first(guild_id, state).limit(SUGGESTIONS))
                return tuple(task_view(t) for t in newest)
            # the range lets the database seek in the (guild_id, slug) index; LIKE decides
            prefix = select(Task).where(
                Task.guild_id == guild_id,
                Task.slug >= needle,
                Task.slug < needle + "\U0010ffff",
                Task.slug.startswith(needle, autoescape=True),
            )
            if state is not None:
                prefix = prefix.where(Task.state == state)
            found = list(
                (await session.scalars(prefix.order_by(Task.slug).limit(SUGGESTIONS))).all()
            )
            if len(found) < SUGGESTIONS:
                window = aliased(
                    Task, _newest_first(guild_id, state).limit(SEARCH_WINDOW).subquery()
                )
                recent = (
                    select(window)
                    .where(
                        or_(
                            func.lower(window.slug).contains(needle, autoescape=True),
                            func.lower(window.title).contains(needle, autoescape=True),
                        ),
                        window.id.not_in([t.id for t in found]),
                    )
                    .order_by(window.updated_at.desc(), window.id.desc())
                    .limit(SUGGESTIONS - len(found))
                )
                found += (await session.scalars(recent)).all()
            return tuple(task_view(t) for t in found)

    async def find(self, guild_id: int, state: TaskState | None = None) -> tuple[TaskView, ...]:
        """Every task of the guild (in ``state`` when given), most recently changed first:
        the whole table, for tests and tools; the bot reads :meth:`page` and
        :meth:`suggest`."""
        async with self.db.read() as session:
            query = (
                select(Task)
                .where(Task.guild_id == guild_id)
                .options(selectinload(Task.dependencies), selectinload(Task.release))
                .order_by(Task.updated_at.desc(), Task.id.desc())
            )
            if state is not None:
                query = query.where(Task.state == state)
            tasks = list((await session.scalars(query)).all())
            deps = await dependency_views(session, guild_id, tasks)
            return tuple(task_view(t, deps[t.id]) for t in tasks)

    async def card(self, guild_id: int, slug: str) -> TaskCard:
        """The task card: the task, its latest review, its timeline, its handoff notes, the
        newest entries of its conversation and its sizing (sealed until it ships: who has bid,
        not what)."""
        async with self.db.read() as session:
            task = await require_task(session, guild_id, slug)
            deps = await dependency_views(session, guild_id, [task])
            request = await session.scalar(
                select(ReviewRequest)
                .where(ReviewRequest.task_id == task.id)
                .order_by(ReviewRequest.round.desc())
                .limit(1)
                .options(joinedload(ReviewRequest.approvals))
            )
            notes = (
                await session.execute(
                    select(HandoffMessage, StageEvent.to_state)
                    .outerjoin(
                        StageEvent, StageEvent.handoff_message_id == HandoffMessage.message_id
                    )
                    .where(HandoffMessage.task_id == task.id, HandoffMessage.note.is_not(None))
                    .order_by(HandoffMessage.id)
                )
            ).all()
            bids = await load_bids(session, [task.id])
            sizing = sizing_view(task.state, bids[task.id], task.actual_size, task.actual_basis)
            return TaskCard(
                task=task_view(task, deps[task.id], sizing=sizing),
                review=review_view(request, task) if request else None,
                timeline=await timeline(session, task),
                notes=tuple(
                    NoteView(
                        at=h.received_at, author_name=h.author_name, to_state=to, note=h.note or ""
                    )
                    for h, to in notes
                ),
                metadata=dict(task.extra or {}),
                conversation=await conversation(session, task.id, before=None, size=CARD_ENTRIES),
            )

    async def conversation(
        self,
        guild_id: int,
        slug: str,
        *,
        before: EntryCursor | None = None,
        size: int = CONVERSATION_PAGE,
    ) -> ConversationPage:
        """The newest ``size`` entries of a task's conversation before ``before`` (its
        handoffs' notes, the replies to its review requests, the ❌'s reasons, re-bids),
        oldest first."""
        async with self.db.read() as session:
            task = await require_task(session, guild_id, slug)
            return await conversation(session, task.id, before=before, size=size)

    async def timeline(self, guild_id: int, slug: str) -> tuple[StageView, ...]:
        async with self.db.read() as session:
            return await timeline(session, await require_task(session, guild_id, slug))
