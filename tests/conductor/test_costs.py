"""The cost of a release: exact sums of what the members' handoffs reported, the unknown
counted and never taken for zero, and the line that says both."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from conductor.costs import (
    ReleaseCost,
    SpendUnit,
    Tally,
    breakdown_line,
    cost_line,
    dollars,
    release_cost,
    stages_line,
    tokens_text,
)
from conductor.states import TaskState

B, S, R = TaskState.BUILDING, TaskState.SUBMITTED, TaskState.DESIGNED


def unit(
    task: str = "a",
    tokens: int | None = None,
    cost: str | None = None,
    *,
    model: str | None = "opus",
    moved: tuple[TaskState, TaskState] = (B, S),
) -> SpendUnit:
    return SpendUnit(task, *moved, model, tokens, Decimal(cost) if cost is not None else None)


units = st.builds(
    SpendUnit,
    task=st.sampled_from(["core", "ui", "docs"]),
    from_state=st.sampled_from([TaskState.CREATED, R, B]),
    to_state=st.sampled_from([R, B, S]),
    model=st.one_of(st.none(), st.sampled_from(["opus", "sonnet", "haiku"])),
    tokens=st.one_of(st.none(), st.integers(0, 10**9)),
    cost=st.one_of(
        st.none(),
        st.decimals(min_value=0, max_value=10**4, places=4, allow_nan=False, allow_infinity=False),
    ),
)


def _sum(tallies: list[Tally]) -> tuple[int, int, Decimal, int, int, int]:
    return (
        sum(t.units for t in tallies),
        sum(t.tokens for t in tallies),
        sum((t.cost for t in tallies), Decimal(0)),
        sum(t.no_tokens for t in tallies),
        sum(t.no_cost for t in tallies),
        sum(t.nothing for t in tallies),
    )


@given(st.lists(units, max_size=40), st.sets(st.sampled_from(["core", "ui", "docs", "idle"])))
def test_the_totals_are_the_exact_sums_of_the_known_and_count_the_unknown(
    timeline: list[SpendUnit], extra: set[str]
) -> None:
    members = sorted({u.task for u in timeline} | extra)
    cost = release_cost(timeline, members)
    total = cost.total
    assert total.units == len(timeline)
    assert total.tokens == sum(u.tokens for u in timeline if u.tokens is not None)
    assert total.cost == sum((u.cost for u in timeline if u.cost is not None), Decimal(0))
    assert isinstance(total.cost, Decimal)
    assert total.no_tokens == sum(1 for u in timeline if u.tokens is None)
    assert total.no_cost == sum(1 for u in timeline if u.cost is None)
    assert total.nothing == sum(1 for u in timeline if u.tokens is None and u.cost is None)
    whole = (total.units, total.tokens, total.cost, total.no_tokens, total.no_cost, total.nothing)
    for breakdown in (cost.by_stage, cost.by_model, cost.by_task):
        assert _sum(list(breakdown.values())) == whole
    assert cost.members == len(members)
    assert cost.silent == len(set(members) - {u.task for u in timeline})
    # the line says how many reported no cost whenever some did and others did not
    line = cost_line(cost)
    if total.known_cost and total.no_cost:
        assert f"{total.no_cost} of {total.units} handoff" in line


def test_a_unit_known_for_cost_is_unknown_for_tokens_and_the_other_way() -> None:
    cost = release_cost([unit(cost="2.50"), unit(tokens=1200)], ["a"])
    assert cost.total == Tally(units=2, tokens=1200, cost=Decimal("2.50"), no_tokens=1,
                               no_cost=1, nothing=0)  # fmt: skip
    assert cost_line(cost) == (
        "💸 $2.50 · 1.2 k tokens · 1 member · 1 of 2 handoffs reported no cost, 1 no tokens "
        "(unknown, not counted as 0)"
    )


def test_the_line_of_the_issue_and_a_member_that_reported_nothing() -> None:
    reported = [
        unit("core", 52_276_348, "33.96", model="claude-opus-4-8"),
        unit("ui", 20_323_652, "16.66", model="claude-sonnet-4-5", moved=(R, B)),
    ]
    assert cost_line(release_cost(reported, ["core", "ui"])) == (
        "💸 $50.62 · 72.6 M tokens · 2 members"
    )
    silent = [*reported, unit("docs", model=None), unit("docs", model=None, moved=(R, B))]
    cost = release_cost(silent, ["core", "ui", "docs"])
    assert cost_line(cost) == (
        "💸 $50.62 · 72.6 M tokens · 3 members · "
        "2 of 4 handoffs reported nothing (unknown, not counted as $0)"
    )
    assert breakdown_line(cost) == (
        "by model: claude-opus-4-8 $33.96 · claude-sonnet-4-5 $16.66 · 1 more"
    )
    assert stages_line(cost) == (
        "by stage: building → submitted $33.96 · designed → building $16.66"
    )


def test_nothing_reported_at_all_is_unknown_not_zero() -> None:
    cost = release_cost([unit(), unit(moved=(R, B)), unit("b"), unit("b")], ["a", "b"])
    assert cost_line(cost) == (
        "💸 cost unknown: none of the 4 handoffs reported tokens or cost (2 members)"
    )
    assert "$0" not in cost_line(cost)
    assert breakdown_line(cost) is None and stages_line(cost) is None
    assert cost_line(release_cost([], ["a", "b"])) == (
        "💸 cost unknown: the 2 members have no handoffs on record"
    )
    assert cost_line(release_cost([unit()], ["a"])) == (
        "💸 cost unknown: the one handoff did not report tokens or cost (1 member)"
    )


def test_tokens_only_and_a_member_without_a_handoff() -> None:
    cost = release_cost([unit(tokens=950_000), unit(tokens=812)], ["a", "b"])
    assert cost_line(cost) == (
        "💸 cost unknown · 951 k tokens · 2 members · 1 member without a handoff"
    )


def test_compact_numbers() -> None:
    assert [tokens_text(n) for n in (0, 812, 9_500, 950_000, 999_950, 72_600_000)] == [
        "0", "812", "9.5 k", "950 k", "1.0 M", "72.6 M",
    ]  # fmt: skip
    assert dollars(Decimal("1234567.891")) == "$1,234,567.89"
    assert dollars(Decimal("0.5")) == "$0.50"


def test_an_empty_release_cost() -> None:
    assert release_cost([], []) == ReleaseCost(members=0, total=Tally())
