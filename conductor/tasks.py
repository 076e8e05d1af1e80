"""Tasks as the team reads them: the list by state, the task card, the timeline.

Tasks change only through handoffs (``conductor.handoffs``), reviews (``conductor.reviews``) and
releases (``conductor.releases``); this module only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from conductor.queries import dependency_views, require_task, review_view, task_view, timeline
from conductor.states import TaskState
from conductor.views import NoteView, StageView, TaskCard, TaskView
from store.models import HandoffMessage, ReviewRequest, StageEvent, Task

if TYPE_CHECKING:
    from store.db import Database


class Tasks:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def find(self, guild_id: int, state: TaskState | None = None) -> tuple[TaskView, ...]:
        """The guild's tasks (in ``state`` when given), most recently changed first."""
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
        """The task card: the task, its latest review, its timeline and its handoff notes."""
        async with self.db.read() as session:
            task = await require_task(session, guild_id, slug)
            deps = await dependency_views(session, guild_id, [task])
            request = await session.scalar(
                select(ReviewRequest)
                .where(ReviewRequest.task_id == task.id)
                .order_by(ReviewRequest.round.desc())
                .limit(1)
                .options(selectinload(ReviewRequest.approvals))
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
            return TaskCard(
                task=task_view(task, deps[task.id]),
                review=review_view(request, task) if request else None,
                timeline=await timeline(session, task),
                notes=tuple(
                    NoteView(
                        at=h.received_at, author_name=h.author_name, to_state=to, note=h.note or ""
                    )
                    for h, to in notes
                ),
                metadata=dict(task.extra or {}),
            )

    async def timeline(self, guild_id: int, slug: str) -> tuple[StageView, ...]:
        async with self.db.read() as session:
            return await timeline(session, await require_task(session, guild_id, slug))
