"""The rules of sealed-bid sizing, without Discord: the actual size on each basis and its
fallbacks, the thresholds' edges, ``[sizing]``, the words, the sealed and revealed lines; and
in the domain: the PM's bid closing at the submission, the developer's first ``size:``
standing, the actual set at the ship."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from conductor.errors import InvalidInput, InvalidMove, NotFound
from conductor.handoffs.parse import HandoffParseError, parse_handoff
from conductor.sizing import (
    Measurements,
    SizingConfig,
    SizingConfigError,
    Thresholds,
    actual_size,
    measure,
    parse_size,
    parse_sizing_config,
    reveal_line,
    sealed_line,
)
from conductor.states import BidRole, CommentKind, Size, SizeBasis, TaskState
from conductor.views import BidView, SizingView
from store.models import Task, TaskBid, TaskComment
from tests.helpers import GUILD, OPERATOR, handoff

B, S_, T = TaskState.BUILDING, TaskState.SUBMITTED, TaskState.CREATED


@dataclass
class U:
    """A stage event as the measure reads it."""

    handoff_message_id: int | None = 1
    from_state: TaskState = T
    to_state: TaskState = B
    seconds_in_previous: float | None = 0.0
    tokens: int | None = None
    cost: Decimal | None = None


# -- the actual size ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "size"),
    [
        ("0", Size.S),
        ("1.99", Size.S),
        ("2", Size.M),
        ("9.99", Size.M),
        ("10", Size.L),
        ("39.99", Size.L),
        ("40", Size.XL),
        ("5000", Size.XL),
    ],
)
def test_the_cost_thresholds_are_exclusive_upper_bounds(cost: str, size: Size) -> None:
    assert actual_size(Measurements(cost=Decimal(cost))) == (size, SizeBasis.COST)


@pytest.mark.parametrize(
    ("hours", "size"),
    [(0.99, Size.S), (1, Size.M), (3.99, Size.M), (4, Size.L), (23.9, Size.L), (24, Size.XL)],
)
def test_the_time_thresholds(hours: float, size: Size) -> None:
    assert actual_size(Measurements(seconds=hours * 3600)) == (size, SizeBasis.TIME)


@pytest.mark.parametrize(
    ("tokens", "size"),
    [(1_999_999, Size.S), (2_000_000, Size.M), (10_000_000, Size.L), (40_000_000, Size.XL)],
)
def test_the_token_thresholds(tokens: int, size: Size) -> None:
    assert actual_size(Measurements(tokens=tokens)) == (size, SizeBasis.TOKENS)


def test_cost_comes_first_then_time_then_tokens_and_nothing_measured_is_unknown() -> None:
    every = Measurements(cost=Decimal(1), seconds=30 * 3600, tokens=50_000_000)
    assert actual_size(every) == (Size.S, SizeBasis.COST)
    assert actual_size(Measurements(seconds=30 * 3600, tokens=1)) == (Size.XL, SizeBasis.TIME)
    assert actual_size(Measurements(tokens=1)) == (Size.S, SizeBasis.TOKENS)
    assert actual_size(Measurements()) is None


def test_a_configured_basis_comes_first_and_falls_back_to_cost_time_tokens() -> None:
    tokens_first = SizingConfig(basis=SizeBasis.TOKENS)
    every = Measurements(cost=Decimal(1), seconds=30 * 3600, tokens=50_000_000)
    assert actual_size(every, tokens_first) == (Size.XL, SizeBasis.TOKENS)
    no_tokens = Measurements(cost=Decimal(1), seconds=30 * 3600)
    assert actual_size(no_tokens, tokens_first) == (Size.S, SizeBasis.COST)
    time_first = SizingConfig(basis=SizeBasis.TIME)
    assert actual_size(Measurements(tokens=1), time_first) == (Size.S, SizeBasis.TOKENS)


def test_a_cost_is_known_only_when_every_handoff_reported_it() -> None:
    full = measure([U(cost=Decimal("1.5"), tokens=10), U(cost=Decimal("2"), tokens=5)])
    assert full == Measurements(cost=Decimal("3.5"), seconds=None, tokens=15)
    # one handoff said nothing of its cost: unknown, never counted as zero
    partial = measure([U(cost=Decimal("50"), tokens=10), U(cost=None, tokens=5)])
    assert partial.cost is None and partial.tokens == 15
    # moves without a handoff (a ❌, a ship) are not spend units
    assert measure([U(cost=Decimal(3)), U(handoff_message_id=None)]).cost == Decimal(3)
    assert measure([U(handoff_message_id=None)]) == Measurements()


def test_the_time_is_spent_building_before_each_submission() -> None:
    units = [
        U(from_state=T, to_state=B, seconds_in_previous=999),
        U(from_state=B, to_state=S_, seconds_in_previous=3000),
        U(handoff_message_id=None, from_state=S_, to_state=B, seconds_in_previous=50),  # ❌
        U(from_state=B, to_state=S_, seconds_in_previous=1000),
    ]
    assert measure(units).seconds == 4000
    assert actual_size(measure(units)) == (Size.M, SizeBasis.TIME)  # 1 h 6 min


# -- [sizing] ----------------------------------------------------------------------------------


def test_the_sizing_table() -> None:
    assert parse_sizing_config(None) == SizingConfig()
    parsed = parse_sizing_config(
        {"basis": "Tokens", "cost": [1, "5", "$20"], "time": ["30m", "2h", "1d12h"]}
    )
    assert parsed.basis is SizeBasis.TOKENS
    assert parsed.cost == Thresholds(1, 5, 20)
    assert parsed.time == Thresholds(1800, 7200, 36 * 3600)
    assert parsed.tokens == SizingConfig().tokens


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ({"basis": "vibes"}, "sizing.basis: expected cost, time or tokens"),
        ({"cost": [1, 2]}, "sizing.cost: expected three bounds"),
        ({"cost": [5, 2, 9]}, "sizing.cost: the bounds must grow"),
        ({"tokens": [0, 2, 3]}, "sizing.tokens[0]: expected a number above 0"),
        ({"time": ["1h", "soon", "1d"]}, "sizing.time[1]"),
        ({"costs": [1, 2, 3]}, "sizing.costs: not a setting"),
    ],
)
def test_a_broken_sizing_table_is_named(table: dict[str, Any], said: str) -> None:
    with pytest.raises(SizingConfigError, match=said.replace("[", r"\[").replace("]", r"\]")):
        parse_sizing_config(table)


# -- words and lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("S", Size.S),
        ("small", Size.S),
        ("m", Size.M),
        ("Medium", Size.M),
        ("LARGE", Size.L),
        ("xl", Size.XL),
        ("Extra-Large", Size.XL),
        ("extra large", Size.XL),
        ("huge", None),
        ("", None),
    ],
)
def test_size_words(text: str, size: Size | None) -> None:
    assert parse_size(text) is size


def test_the_handoff_size_header() -> None:
    parsed = parse_handoff("handoff core → building\nSize: Large\ncost: $3\n\nnote")
    assert parsed.size is Size.L and "size" not in parsed.metadata
    assert parse_handoff("handoff core → building\n\nno size").size is None
    with pytest.raises(HandoffParseError) as error:
        parse_handoff("handoff core → building\ntitle: Core\nsize: huge")
    assert str(error.value) == (
        'line 3: size must be S, M, L or XL (or small, medium, large, extra-large), got "huge"'
    )
    with pytest.raises(HandoffParseError, match="size is given twice"):
        parse_handoff("handoff core → building\nsize: S\nsize: M")


def view(*bids: tuple[BidRole, Size], actual: Size | None, revealed: bool = True) -> SizingView:
    return SizingView(
        tuple(BidView(role, "x", size) for role, size in bids),
        actual,
        SizeBasis.COST if actual else None,
        revealed,
    )


def test_the_reveal_and_the_sealed_lines() -> None:
    pm, po, dev = BidRole.PM, BidRole.PO, BidRole.DEV
    missed = view((pm, Size.M), (po, Size.L), (dev, Size.L), actual=Size.XL)
    assert reveal_line(missed) == "PM M · PO L · Dev L → actual XL ≠ forecast"
    hit = view((po, Size.L), (dev, Size.L), actual=Size.L)
    assert reveal_line(hit) == "PO L · Dev L → actual L = forecast"
    assert reveal_line(view((dev, Size.S), actual=None)) == (
        "Dev S → actual unknown (nothing measured)"
    )
    assert reveal_line(view(actual=Size.M)) == "no forecast → actual M"
    sealed = SizingView((BidView(pm, "alex"), BidView(dev, "bob")), None, None, False)
    assert reveal_line(sealed) is None
    assert sealed_line(sealed) == "sized by PM, Dev · sealed until it ships"
    assert sealed_line(SizingView()) == "no bids yet · sealed until it ships"


# -- in the domain -----------------------------------------------------------------------------


async def test_bids_in_the_domain(domain: Any) -> None:
    sizing = domain.sizing
    with pytest.raises(NotFound):
        await sizing.bid(GUILD, "nope", BidRole.PM, Size.M, OPERATOR)
    await domain.handoffs.apply(handoff("handoff core → building\nsize: M\ncost: $1"))
    with pytest.raises(InvalidInput, match="handoff"):
        await sizing.bid(GUILD, "core", BidRole.DEV, Size.M, OPERATOR)
    first = await sizing.bid(GUILD, "core", BidRole.PM, Size.S, OPERATOR)
    assert (first.previous, first.bidders) == (None, (BidRole.PM, BidRole.DEV))
    again = await sizing.bid(GUILD, "core", BidRole.PM, Size.L, OPERATOR)
    assert again.changed and again.previous is Size.S
    # the developer's later different size is a re-bid; the same message twice changes nothing
    rebid = handoff("handoff core → submitted\nsize: XL\ncost: $1")
    await domain.handoffs.apply(rebid)
    await domain.handoffs.apply(rebid)
    await domain.handoffs.apply(handoff("handoff core → submitted\nsize: M\n\nsame size"))
    with pytest.raises(InvalidMove, match="bids close at submission"):
        await sizing.bid(GUILD, "core", BidRole.PO, Size.M, OPERATOR)
    # back in building, the work seen: still closed (and the ballot says so before a size)
    await domain.handoffs.apply(handoff("handoff core → building\n\nthe tests were wrong"))
    for ask in (
        sizing.bid(GUILD, "core", BidRole.PO, Size.M, OPERATOR),
        sizing.ballot(GUILD, "core", BidRole.PO),
    ):
        with pytest.raises(
            InvalidMove, match="was submitted once already: bids close at the first"
        ):
            await ask
    async with domain.db.read() as session:
        bids = (await session.execute(select(TaskBid.role, TaskBid.size))).all()
        comments = (await session.execute(select(TaskComment.kind, TaskComment.text))).all()
        task = await session.scalar(select(Task))
    assert sorted(bids) == [(BidRole.DEV, Size.M), (BidRole.PM, Size.L)]
    assert comments == [(CommentKind.REBID, "re-bid XL (the first bid, M, stands)")]
    assert task is not None and task.actual_size is None  # measured only at the ship
    card = await domain.tasks.card(GUILD, "core")
    assert card.task.sizing is not None and not card.task.sizing.revealed
    assert [(b.role, b.size) for b in card.task.sizing.bids] == [
        (BidRole.PM, None),
        (BidRole.DEV, None),
    ]
