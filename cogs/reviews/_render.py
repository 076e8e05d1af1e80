"""The review request message, as it reads at each point of its round."""

from __future__ import annotations

from conductor.states import ReviewStatus
from conductor.text import clip
from conductor.views import ReviewView

APPROVE, REQUEST_CHANGES = "✅", "❌"


def review_message(review: ReviewView) -> str:
    head = f"📨 **Review** `{review.task_slug}` — {clip(review.task_title, 200)}"
    if review.round > 1:
        head += f" (round {review.round})"
    lines = [head]
    if review.branch:
        lines.append(f"Branch: `{review.branch}`")
    lines.append(f"Author: {review.author_name}")
    names = ", ".join(a.name for a in review.approvers)
    match review.status:
        case ReviewStatus.OPEN:
            lines.append(f"React {APPROVE} to approve, {REQUEST_CHANGES} to request changes.")
            count = f"**{review.count}/{review.required} approvals**"
            lines.append(f"{count}: {names}" if names else count)
        case ReviewStatus.APPROVED:
            lines.append(f"✅ **Reviewed** — approved by {names or review.closed_by}.")
        case ReviewStatus.CHANGES_REQUESTED:
            lines.append(
                f"❌ **Changes requested** by {review.closed_by}: the task is back to building."
            )
        case ReviewStatus.SUPERSEDED:
            state = review.task_state.value if review.task_state else "another state"
            lines.append(
                f"⏭️ Superseded: the task moved on ({state}); reactions here no longer count."
            )
    return clip("\n".join(lines), 2000)
