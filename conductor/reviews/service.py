"""Review requests as a service: the message that carries each, the reactions on it (one at a
time, or many per transaction through the group commit), and the requests still open."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from conductor.batching import GroupCommit
from conductor.errors import NotFound
from conductor.queries import review_view
from conductor.reviews.conversation import Replies
from conductor.reviews.reactions import APPROVE, REJECT, WITHDRAW, Reaction, ReactionApplier
from conductor.states import ReviewStatus
from conductor.views import IncomingReply, ReactionResult, Reactor, ReplyResult, ReviewView
from store.models import ReviewRequest

if TYPE_CHECKING:
    from store.db import Database


class Reviews:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.reactions = ReactionApplier(db)
        #: members' replies on the requests: the tasks' conversation
        self.replies = Replies(db)
        #: the group-commit front door for a busy review channel
        self.queue: GroupCommit[Reaction, ReactionResult] = GroupCommit(
            self.reactions.apply, name="reaction-drainer"
        )
        #: where each request's message is, many per transaction (a burst of submissions)
        self._attach: GroupCommit[tuple[int, int, int], None] = GroupCommit(
            self._attach_all, name="review-attach"
        )

    async def submit(self, reaction: Reaction) -> ReactionResult:
        """Apply a reaction together with whatever else has queued (one transaction)."""
        return await self.queue.submit(reaction)

    async def reply(self, reply: IncomingReply) -> ReplyResult:
        """Keep a member's reply to a review request (or a message in its thread) in the
        task's conversation; a reply by a reviewer whose ❌ sent the task back explains it."""
        return await self.replies.keep(reply)

    async def reply_edited(self, message_id: int, text: str) -> bool:
        """A kept reply edited in Discord: the conversation shows the new text."""
        return await self.replies.edited(message_id, text)

    async def replies_deleted(self, message_ids: set[int]) -> int:
        """Kept replies deleted in Discord leave the conversation."""
        return await self.replies.deleted(message_ids)

    async def attach_message(self, request_id: int, channel_id: int, message_id: int) -> None:
        """Remember which Discord message carries a review request (reactions arrive on it),
        in one transaction with the others posted meanwhile."""
        await self._attach.submit((request_id, channel_id, message_id))

    async def _attach_all(self, items: Sequence[tuple[int, int, int]]) -> list[Exception | None]:
        async with self.db.write() as session:
            ids = {request_id for request_id, _, _ in items}
            found = set(
                await session.scalars(select(ReviewRequest.id).where(ReviewRequest.id.in_(ids)))
            )
            rows = [
                {"id": request_id, "channel_id": channel_id, "message_id": message_id}
                for request_id, channel_id, message_id in items
                if request_id in found
            ]
            if rows:
                await session.execute(update(ReviewRequest), rows)
        return [
            None if request_id in found else NotFound(f"No review request #{request_id}.")
            for request_id, _, _ in items
        ]

    async def record_approval(
        self, guild_id: int, message_id: int, reactor: Reactor
    ) -> ReactionResult:
        """A ✅ on a review message. At the required count the task becomes reviewed, once."""
        return await self.reactions.apply_one(Reaction(APPROVE, guild_id, message_id, reactor))

    async def withdraw_approval(
        self, guild_id: int, message_id: int, reactor: Reactor
    ) -> ReactionResult:
        """A ✅ removed. Before the threshold it takes the approval back; after, nothing."""
        return await self.reactions.apply_one(Reaction(WITHDRAW, guild_id, message_id, reactor))

    async def request_changes(
        self, guild_id: int, message_id: int, reactor: Reactor
    ) -> ReactionResult:
        """A ❌ from an eligible reviewer: the task goes back to building, approvals reset."""
        return await self.reactions.apply_one(Reaction(REJECT, guild_id, message_id, reactor))

    async def get(self, request_id: int) -> ReviewView:
        async with self.db.read() as session:
            request = await session.get(
                ReviewRequest,
                request_id,
                options=[selectinload(ReviewRequest.approvals), selectinload(ReviewRequest.task)],
            )
            if request is None:
                raise NotFound(f"No review request #{request_id}.")
            return review_view(request, request.task)

    async def still_open(self, guild_id: int) -> tuple[ReviewView, ...]:
        """Review requests still waiting for approvals (the Discord layer reconciles them)."""
        async with self.db.read() as session:
            requests = (
                await session.scalars(
                    select(ReviewRequest)
                    .where(
                        ReviewRequest.guild_id == guild_id,
                        ReviewRequest.status == ReviewStatus.OPEN,
                    )
                    .options(
                        selectinload(ReviewRequest.approvals), selectinload(ReviewRequest.task)
                    )
                    .order_by(ReviewRequest.id)
                )
            ).all()
            return tuple(review_view(r, r.task) for r in requests)
