"""Review counting: distinct eligible humans, the threshold once, withdrawals, ❌."""

from __future__ import annotations

from itertools import count

from conductor.service import ReleaseService
from conductor.states import TaskState
from conductor.views import Reactor, ReviewView
from store.models import ReviewStatus
from tests.conftest import AGENT_ID, GUILD, REVIEWERS, handoff

_ids = count(70_000)
CARL, ALEX, AVI = REVIEWERS


async def _submit(service: ReleaseService, slug: str = "feat") -> tuple[int, ReviewView]:
    result = await service.apply_handoff(
        handoff(f"handoff {slug} → submitted\nbranch: feat/{slug}")
    )
    assert result.review is not None
    message_id = next(_ids)
    await service.attach_review_message(result.review.request_id, 77, message_id)
    return message_id, result.review


async def _state(service: ReleaseService, slug: str = "feat") -> TaskState:
    return (await service.task_card(GUILD, slug)).task.state


async def test_review_request_opens_on_submit(service: ReleaseService) -> None:
    _, review = await _submit(service)
    assert (review.task_slug, review.branch, review.round, review.required, review.count) == (
        "feat",
        "feat/feat",
        1,
        2,
        0,
    )
    assert review.author_id == AGENT_ID


async def test_two_distinct_reviewers_reach_the_threshold_once(service: ReleaseService) -> None:
    message, _ = await _submit(service)
    first = await service.record_approval(GUILD, message, CARL)
    assert (first.counted, first.became_reviewed, first.task_state) == (
        True,
        False,
        TaskState.SUBMITTED,
    )
    again = await service.record_approval(GUILD, message, CARL)  # same person twice
    assert (again.counted, again.reason) == (False, "already counted")
    second = await service.record_approval(GUILD, message, ALEX)
    assert (second.counted, second.became_reviewed, second.task_state) == (
        True,
        True,
        TaskState.REVIEWED,
    )
    assert second.review is not None
    assert [a.name for a in second.review.approvers] == ["carl", "alex"]
    assert second.review.status is ReviewStatus.APPROVED
    third = await service.record_approval(GUILD, message, AVI)
    assert third.became_reviewed is False
    assert await _state(service) is TaskState.REVIEWED
    moves = [(e.from_state, e.to_state) for e in await service.timeline(GUILD, "feat")]
    assert moves.count((TaskState.SUBMITTED, TaskState.REVIEWED)) == 1


async def test_ineligible_approvals_never_count(service: ReleaseService) -> None:
    message, _ = await _submit(service)
    author = await service.record_approval(GUILD, message, Reactor(AGENT_ID, "machoke"))
    bot = await service.record_approval(GUILD, message, Reactor(4242, "otherbot", is_bot=True))
    no_role = await service.record_approval(
        GUILD, message, Reactor(4343, "drive-by", has_reviewer_role=False)
    )
    assert [(r.counted, r.reason) for r in (author, bot, no_role)] == [
        (False, "the author's own reaction doesn't count"),
        (False, "bots don't review"),
        (False, "only members with the reviewer role can review"),
    ]
    with_role = await service.record_approval(
        GUILD, message, Reactor(4444, "rita", has_reviewer_role=True)
    )
    assert with_role.counted and with_role.review is not None and with_role.review.count == 1
    assert await _state(service) is TaskState.SUBMITTED


async def test_withdrawal_before_threshold_takes_it_back(service: ReleaseService) -> None:
    message, _ = await _submit(service)
    await service.record_approval(GUILD, message, CARL)
    back = await service.withdraw_approval(GUILD, message, CARL)
    assert back.counted and back.review is not None and back.review.count == 0
    nothing = await service.withdraw_approval(GUILD, message, ALEX)
    assert (nothing.counted, nothing.reason) == (False, "no approval to withdraw")
    # Carl's withdrawn approval no longer helps: Alex alone is one of two.
    alone = await service.record_approval(GUILD, message, ALEX)
    assert alone.became_reviewed is False
    done = await service.record_approval(GUILD, message, CARL)
    assert done.became_reviewed is True
    after = await service.withdraw_approval(GUILD, message, CARL)
    assert (after.counted, after.reason) == (False, "the task is already reviewed")
    assert await _state(service) is TaskState.REVIEWED


async def test_request_changes_resets_and_sends_back(service: ReleaseService) -> None:
    message, _ = await _submit(service)
    await service.record_approval(GUILD, message, CARL)
    own = await service.request_changes(GUILD, message, Reactor(AGENT_ID, "machoke"))
    assert own.counted is False
    result = await service.request_changes(GUILD, message, ALEX)
    assert (result.counted, result.sent_back, result.task_state) == (True, True, TaskState.BUILDING)
    assert result.review is not None and result.review.count == 0
    assert result.review.status is ReviewStatus.CHANGES_REQUESTED
    # The old request is stale now: reactions on it change nothing.
    stale = await service.record_approval(GUILD, message, AVI)
    assert (stale.counted, stale.reason) == (
        False,
        "stale review: the task has moved on (building)",
    )
    # Resubmitting opens round 2 from zero.
    new_message, review = await _submit(service)
    assert (review.round, review.count) == (2, 0)
    await service.record_approval(GUILD, new_message, CARL)
    assert (await service.record_approval(GUILD, new_message, AVI)).became_reviewed is True


async def test_changes_can_be_requested_after_approval_until_assembled(
    service: ReleaseService,
) -> None:
    message, _ = await _submit(service)
    await service.record_approval(GUILD, message, CARL)
    await service.record_approval(GUILD, message, ALEX)
    result = await service.request_changes(GUILD, message, AVI)
    assert (result.sent_back, result.task_state) == (True, TaskState.BUILDING)


async def test_a_handoff_back_to_building_supersedes_the_request(service: ReleaseService) -> None:
    message, _ = await _submit(service)
    await service.record_approval(GUILD, message, CARL)
    await service.apply_handoff(handoff("handoff feat → building\n\nfound a bug, reworking"))
    stale = await service.record_approval(GUILD, message, ALEX)
    assert stale.counted is False
    assert stale.review is not None and stale.review.status is ReviewStatus.SUPERSEDED
    assert await _state(service) is TaskState.BUILDING


async def test_reactions_on_unknown_messages_are_ignored(service: ReleaseService) -> None:
    result = await service.record_approval(GUILD, 123456789, CARL)
    assert (result.counted, result.reason, result.review) == (False, "not a review message", None)


async def test_open_reviews_lists_waiting_requests(service: ReleaseService) -> None:
    m1, _ = await _submit(service, "one")
    await _submit(service, "two")
    await service.record_approval(GUILD, m1, CARL)
    await service.record_approval(GUILD, m1, ALEX)
    assert [r.task_slug for r in await service.open_reviews(GUILD)] == ["two"]
