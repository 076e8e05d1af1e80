"""Who may review, and the review read model. Pure: no database, no Discord."""

from __future__ import annotations

from store.models import ReviewRequest, Task
from conductor.views import Approver, Reactor, ReviewView


def ineligibility(reactor: Reactor, *, author_id: int | None) -> str | None:
    """Why this reaction does not count, or None when it does. Approvals come from distinct
    humans: not bots, not the task's author, holding the reviewer role when one is set."""
    if reactor.is_bot:
        return "bots don't review"
    if author_id is not None and reactor.user_id == author_id:
        return "the author's own reaction doesn't count"
    if reactor.has_reviewer_role is False:
        return "only members with the reviewer role can review"
    return None


def review_view(request: ReviewRequest, task: Task) -> ReviewView:
    return ReviewView(
        request_id=request.id,
        task_slug=task.slug,
        task_title=task.title,
        branch=task.branch,
        author_name=task.author_name,
        author_id=request.author_id,
        round=request.round,
        status=request.status,
        required=request.required,
        approvers=tuple(Approver(a.user_id, a.user_name) for a in request.approvals),
        channel_id=request.channel_id,
        message_id=request.message_id,
    )
