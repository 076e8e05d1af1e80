"""Review counting: distinct eligible humans, the threshold once, withdrawals, ❌."""

from __future__ import annotations

import asyncio
from itertools import count

from conductor.bootstrap import Conductor
from conductor.errors import NotFound
from conductor.states import ReviewStatus, TaskState
from conductor.views import Reactor, ReviewView
from tests.helpers import AGENT_ID, GUILD, REVIEWERS, handoff

_ids = count(70_000)
CARL, ALEX, AVI = REVIEWERS


async def _submit(domain: Conductor, slug: str = "feat") -> tuple[int, ReviewView]:
    result = await domain.handoffs.apply(
        handoff(f"handoff {slug} → submitted\nbranch: feat/{slug}")
    )
    assert result.review is not None
    message_id = next(_ids)
    await domain.reviews.attach_message(result.review.request_id, 77, message_id)
    return message_id, result.review


async def _state(domain: Conductor, slug: str = "feat") -> TaskState:
    return (await domain.tasks.card(GUILD, slug)).task.state


async def test_review_request_opens_on_submit(domain: Conductor) -> None:
    _, review = await _submit(domain)
    assert (review.task_slug, review.branch, review.round, review.required, review.count) == (
        "feat",
        "feat/feat",
        1,
        2,
        0,
    )
    assert review.author_id == AGENT_ID


async def test_two_distinct_reviewers_reach_the_threshold_once(domain: Conductor) -> None:
    message, _ = await _submit(domain)
    first = await domain.reviews.record_approval(GUILD, message, CARL)
    assert (first.counted, first.became_reviewed, first.task_state) == (
        True,
        False,
        TaskState.SUBMITTED,
    )
    again = await domain.reviews.record_approval(GUILD, message, CARL)  # same person twice
    assert (again.counted, again.reason) == (False, "already counted")
    second = await domain.reviews.record_approval(GUILD, message, ALEX)
    assert (second.counted, second.became_reviewed, second.task_state) == (
        True,
        True,
        TaskState.REVIEWED,
    )
    assert second.review is not None
    assert [a.name for a in second.review.approvers] == ["carl", "alex"]
    assert second.review.status is ReviewStatus.APPROVED
    third = await domain.reviews.record_approval(GUILD, message, AVI)
    assert third.became_reviewed is False
    assert await _state(domain) is TaskState.REVIEWED
    moves = [(e.from_state, e.to_state) for e in await domain.tasks.timeline(GUILD, "feat")]
    assert moves.count((TaskState.SUBMITTED, TaskState.REVIEWED)) == 1


async def test_ineligible_approvals_never_count(domain: Conductor) -> None:
    message, _ = await _submit(domain)
    author = await domain.reviews.record_approval(GUILD, message, Reactor(AGENT_ID, "machoke"))
    bot = await domain.reviews.record_approval(
        GUILD, message, Reactor(4242, "otherbot", is_bot=True)
    )
    no_role = await domain.reviews.record_approval(
        GUILD, message, Reactor(4343, "drive-by", has_reviewer_role=False)
    )
    assert [(r.counted, r.reason) for r in (author, bot, no_role)] == [
        (False, "the author's own reaction doesn't count"),
        (False, "bots don't review"),
        (False, "only members with the reviewer role can review"),
    ]
    with_role = await domain.reviews.record_approval(
        GUILD, message, Reactor(4444, "rita", has_reviewer_role=True)
    )
    assert with_role.counted and with_role.review is not None and with_role.review.count == 1
    assert await _state(domain) is TaskState.SUBMITTED


async def test_withdrawal_before_threshold_takes_it_back(domain: Conductor) -> None:
    message, _ = await _submit(domain)
    await domain.reviews.record_approval(GUILD, message, CARL)
    back = await domain.reviews.withdraw_approval(GUILD, message, CARL)
    assert back.counted and back.review is not None and back.review.count == 0
    nothing = await domain.reviews.withdraw_approval(GUILD, message, ALEX)
    assert (nothing.counted, nothing.reason) == (False, "no approval to withdraw")
    # Carl's withdrawn approval no longer helps: Alex alone is one of two.
    alone = await domain.reviews.record_approval(GUILD, message, ALEX)
    assert alone.became_reviewed is False
    done = await domain.reviews.record_approval(GUILD, message, CARL)
    assert done.became_reviewed is True
    after = await domain.reviews.withdraw_approval(GUILD, message, CARL)
    assert (after.counted, after.reason) == (False, "the task is already reviewed")
    assert await _state(domain) is TaskState.REVIEWED


async def test_request_changes_resets_and_sends_back(domain: Conductor) -> None:
    message, _ = await _submit(domain)
    await domain.reviews.record_approval(GUILD, message, CARL)
    own = await domain.reviews.request_changes(GUILD, message, Reactor(AGENT_ID, "machoke"))
    assert own.counted is False
    result = await domain.reviews.request_changes(GUILD, message, ALEX)
    assert (result.counted, result.sent_back, result.task_state) == (True, True, TaskState.BUILDING)
    assert result.review is not None and result.review.count == 0
    assert result.review.status is ReviewStatus.CHANGES_REQUESTED
    # The old request is stale now: reactions on it change nothing.
    stale = await domain.reviews.record_approval(GUILD, message, AVI)
    assert (stale.counted, stale.reason) == (
        False,
        "stale review: the task has moved on (building)",
    )
    # Resubmitting opens round 2 from zero.
    new_message, review = await _submit(domain)
    assert (review.round, review.count) == (2, 0)
    await domain.reviews.record_approval(GUILD, new_message, CARL)
    assert (await domain.reviews.record_approval(GUILD, new_message, AVI)).became_reviewed is True


async def test_changes_can_be_requested_after_approval_until_assembled(
    domain: Conductor,
) -> None:
    message, _ = await _submit(domain)
    await domain.reviews.record_approval(GUILD, message, CARL)
    await domain.reviews.record_approval(GUILD, message, ALEX)
    result = await domain.reviews.request_changes(GUILD, message, AVI)
    assert (result.sent_back, result.task_state) == (True, TaskState.BUILDING)


async def test_a_handoff_back_to_building_supersedes_the_request(domain: Conductor) -> None:
    message, _ = await _submit(domain)
    await domain.reviews.record_approval(GUILD, message, CARL)
    await domain.handoffs.apply(handoff("handoff feat → building\n\nfound a bug, reworking"))
    stale = await domain.reviews.record_approval(GUILD, message, ALEX)
    assert stale.counted is False
    assert stale.review is not None and stale.review.status is ReviewStatus.SUPERSEDED
    assert await _state(domain) is TaskState.BUILDING


async def test_reactions_on_unknown_messages_are_ignored(domain: Conductor) -> None:
    result = await domain.reviews.record_approval(GUILD, 123456789, CARL)
    assert (result.counted, result.reason, result.review) == (False, "not a review message", None)


async def test_open_reviews_lists_waiting_requests(domain: Conductor) -> None:
    m1, _ = await _submit(domain, "one")
    await _submit(domain, "two")
    await domain.reviews.record_approval(GUILD, m1, CARL)
    await domain.reviews.record_approval(GUILD, m1, ALEX)
    assert [r.task_slug for r in await domain.reviews.still_open(GUILD)] == ["two"]


async def test_messages_attached_together_each_to_its_request(domain: Conductor) -> None:
    reviews = []
    for slug in ("one", "two", "three"):
        result = await domain.handoffs.apply(handoff(f"handoff {slug} → submitted"))
        assert result.review is not None
        reviews.append(result.review)
    attached = await asyncio.gather(  # one transaction: the group commit takes all three
        *(domain.reviews.attach_message(r.request_id, 77, 900 + i) for i, r in enumerate(reviews)),
        domain.reviews.attach_message(999_999, 77, 950),
        return_exceptions=True,
    )
    assert attached[:3] == [None, None, None]
    assert isinstance(attached[3], NotFound) and "#999999" in str(attached[3])
    for i, review in enumerate(reviews):
        stored = await domain.reviews.get(review.request_id)
        assert (stored.channel_id, stored.message_id) == (77, 900 + i)
