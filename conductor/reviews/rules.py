"""Who may review. Pure: no database, no Discord."""

from __future__ import annotations

from conductor.states import ReviewStatus
from conductor.views import Reactor

#: a review request in these states still takes reactions
LIVE_REVIEW: tuple[ReviewStatus, ...] = (ReviewStatus.OPEN, ReviewStatus.APPROVED)


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
