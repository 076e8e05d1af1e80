"""Review reactions on the database: ✅ counted, ✅ taken back, ❌ sending the task back.

Reactions arrive in bursts (a team reviewing from their phones after stand-up), so they are
applied in batches, one write transaction per batch in arrival order, through
:class:`~conductor.batching.GroupCommit`. A batch that fails is rolled back and re-applied one
reaction per transaction, so one bad reaction never takes its neighbours down with it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from conductor.batching import turns
from conductor.machines import Move, TaskFlow
from conductor.queries import review_view
from conductor.reviews.conversation import give_reason
from conductor.reviews.rules import LIVE_REVIEW, ineligibility
from conductor.states import ReviewStatus, TaskState
from conductor.views import ReactionResult, Reactor
from store.db import Session
from store.errors import DatabaseUnavailable
from store.models import ReviewApproval, ReviewRequest
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

Kind = Literal["approve", "withdraw", "reject"]
APPROVE: Kind = "approve"
WITHDRAW: Kind = "withdraw"
REJECT: Kind = "reject"


@dataclass(frozen=True, slots=True)
class Reaction:
    kind: Kind
    guild_id: int
    message_id: int
    reactor: Reactor


def _ignored(request: ReviewRequest, reason: str) -> ReactionResult:
    """The reaction changed nothing, and why."""
    return ReactionResult(False, reason, review_view(request, request.task), request.task.state)


class ReactionApplier:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def apply_one(self, reaction: Reaction) -> ReactionResult:
        [result] = await self.apply([reaction])
        if isinstance(result, Exception):
            raise result
        return result

    async def apply(self, reactions: Sequence[Reaction]) -> list[ReactionResult | Exception]:
        try:
            async with self.db.write() as session:
                requests = await _requests(session, reactions)
                # Views are built from the rows in memory as each reaction leaves them, so
                # each result shows the state right after its own reaction.
                return [await self._one(session, r, requests) async for r in turns(reactions)]
        except DatabaseUnavailable as down:
            # The database says its outage itself, once: no traceback per reaction, and no
            # retry one by one (each would meet the same outage). Nothing was counted.
            log.info("%d reaction(s) wait for the database (%s)", len(reactions), down.reason)
            return [down] * len(reactions)
        except Exception as error:
            if len(reactions) > 1:
                log.warning(
                    "reaction batch of %d failed (%r); applying one by one", len(reactions), error
                )
                return [(await self.apply([r]))[0] for r in reactions]
            log.error("reaction %s failed", reactions[0], exc_info=error)
            return [error]

    async def _one(
        self,
        session: Session,
        reaction: Reaction,
        requests: dict[tuple[int, int], ReviewRequest],
    ) -> ReactionResult:
        reactor = reaction.reactor
        # A take-back needs no eligibility: only counted approvals can be taken back.
        request = _live_request(
            requests.get((reaction.guild_id, reaction.message_id)),
            None if reaction.kind == WITHDRAW else reactor,
        )
        if isinstance(request, ReactionResult):
            return request
        match reaction.kind:
            case "approve":
                return await _approve(session, request, reactor)
            case "withdraw":
                return _withdraw(request, reactor)
            case "reject":
                return await _reject(session, request, reactor)


async def _requests(
    session: Session, reactions: Sequence[Reaction]
) -> dict[tuple[int, int], ReviewRequest]:
    """The review requests behind a batch's messages, with approvals and tasks, in three
    queries whatever the batch's size."""
    rows = await session.scalars(
        select(ReviewRequest)
        .where(ReviewRequest.message_id.in_({r.message_id for r in reactions}))
        .options(selectinload(ReviewRequest.approvals), selectinload(ReviewRequest.task))
    )
    return {(r.guild_id, r.message_id): r for r in rows if r.message_id is not None}


def _live_request(
    request: ReviewRequest | None, reactor: Reactor | None
) -> ReviewRequest | ReactionResult:
    """The live review request, or why the reaction changes nothing (not a review message, a
    stale one, or — given ``reactor`` — someone who may not review)."""
    if request is None:
        return ReactionResult(False, "not a review message", None)
    task = request.task
    live = request.status in LIVE_REVIEW and task.state in (
        TaskState.SUBMITTED,
        TaskState.REVIEWED,
    )
    if not live:
        return _ignored(request, f"stale review: the task has moved on ({task.state.value})")
    why_not = reactor and ineligibility(reactor, author_id=request.author_id)
    if why_not:
        return _ignored(request, why_not)
    return request


async def _approve(session: Session, request: ReviewRequest, reactor: Reactor) -> ReactionResult:
    task = request.task
    if any(a.user_id == reactor.user_id for a in request.approvals):
        return _ignored(request, "already counted")
    request.approvals.append(ReviewApproval(user_id=reactor.user_id, user_name=reactor.name[:100]))
    became_reviewed = False
    if (
        request.status is ReviewStatus.OPEN
        and len(request.approvals) >= request.required
        and task.state is TaskState.SUBMITTED
    ):
        names = ", ".join(a.user_name for a in request.approvals)
        await TaskFlow(task, session).fire(
            "approve", Move(actor=names[:100], actor_id=reactor.user_id)
        )
        request.status = ReviewStatus.APPROVED
        request.closed_at, request.closed_by = utcnow(), names[:100]
        became_reviewed = True
    return ReactionResult(
        True,
        "approval counted",
        review_view(request, task),
        task.state,
        became_reviewed=became_reviewed,
        in_release=task.release_id is not None,
    )


def _withdraw(request: ReviewRequest, reactor: Reactor) -> ReactionResult:
    if request.status is not ReviewStatus.OPEN:
        return _ignored(request, "the task is already reviewed")
    mine = [a for a in request.approvals if a.user_id == reactor.user_id]
    if not mine:
        return _ignored(request, "no approval to withdraw")
    request.approvals.remove(mine[0])
    return ReactionResult(
        True, "approval withdrawn", review_view(request, request.task), request.task.state
    )


async def _reject(session: Session, request: ReviewRequest, reactor: Reactor) -> ReactionResult:
    task = request.task
    now = utcnow()
    await TaskFlow(task, session).fire(
        "request_changes", Move(actor=reactor.name[:100], actor_id=reactor.user_id, at=now)
    )
    request.approvals.clear()
    request.status = ReviewStatus.CHANGES_REQUESTED
    request.closed_at, request.closed_by = now, reactor.name[:100]
    # the reviewer replied first, then reacted: that reply says why (a ❌ in a batch of many
    # pays one query, and a flush only when there is a reply to tie)
    await give_reason(session, request, reactor.user_id)
    return ReactionResult(
        True,
        "changes requested",
        review_view(request, task),
        task.state,
        sent_back=True,
        in_release=task.release_id is not None,
    )
