"""The cost of a release: the tokens and dollars its members' handoffs reported, summed.

Pure: no database, no Discord. A task's reported spend is its handoff moves (the stage events
a handoff made, ``handoff_message_id`` set), one :class:`SpendUnit` each. A unit that reported
no tokens counts as unknown tokens, one that reported no cost as unknown cost: never as zero,
and every total says how many were unknown. Dollars are :class:`~decimal.Decimal`, never
float.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from conductor.states import TaskState

K = TypeVar("K")

#: how many models (by cost) the breakdown line names; the rest are counted
TOP_MODELS = 3


@dataclass(frozen=True, slots=True)
class SpendUnit:
    """One handoff move of a member: what it reported (None: not reported)."""

    task: str
    from_state: TaskState
    to_state: TaskState
    model: str | None
    tokens: int | None
    cost: Decimal | None

    @property
    def stage(self) -> str:
        """``building → submitted``: the move, as the breakdown keys it."""
        return f"{self.from_state.value} → {self.to_state.value}"


@dataclass(frozen=True, slots=True)
class Tally:
    """Sums over some units: the known values added, the unknown ones counted."""

    units: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    #: units that reported no tokens / no cost / neither
    no_tokens: int = 0
    no_cost: int = 0
    nothing: int = 0

    def add(self, unit: SpendUnit) -> Tally:
        return Tally(
            units=self.units + 1,
            tokens=self.tokens + (unit.tokens or 0),
            cost=self.cost + (unit.cost if unit.cost is not None else Decimal(0)),
            no_tokens=self.no_tokens + (unit.tokens is None),
            no_cost=self.no_cost + (unit.cost is None),
            nothing=self.nothing + (unit.tokens is None and unit.cost is None),
        )

    @property
    def known_tokens(self) -> bool:
        """Some unit reported tokens."""
        return self.no_tokens < self.units

    @property
    def known_cost(self) -> bool:
        """Some unit reported a cost."""
        return self.no_cost < self.units


@dataclass(frozen=True, slots=True)
class ReleaseCost:
    """A release's reported spend: the totals, by stage (the move), by model (None: not
    reported) and by member (slug), each ordered by cost then tokens, largest first."""

    members: int
    total: Tally
    by_stage: Mapping[str, Tally] = field(default_factory=dict)
    by_model: Mapping[str | None, Tally] = field(default_factory=dict)
    by_task: Mapping[str, Tally] = field(default_factory=dict)
    #: members with no handoff move at all
    silent: int = 0


def _largest_first(tallies: dict[K, Tally]) -> dict[K, Tally]:
    return dict(
        sorted(tallies.items(), key=lambda item: (-item[1].cost, -item[1].tokens, str(item[0])))
    )


def release_cost(units: Iterable[SpendUnit], members: Iterable[str]) -> ReleaseCost:
    """The cost of a release whose members (slugs) made ``units``."""
    slugs = list(members)
    total = Tally()
    by_stage: dict[str, Tally] = {}
    by_model: dict[str | None, Tally] = {}
    by_task: dict[str, Tally] = {}
    for unit in units:
        total = total.add(unit)
        by_stage[unit.stage] = by_stage.get(unit.stage, Tally()).add(unit)
        by_model[unit.model] = by_model.get(unit.model, Tally()).add(unit)
        by_task[unit.task] = by_task.get(unit.task, Tally()).add(unit)
    return ReleaseCost(
        members=len(slugs),
        total=total,
        by_stage=_largest_first(by_stage),
        by_model=_largest_first(by_model),
        by_task=_largest_first(by_task),
        silent=sum(1 for slug in set(slugs) if slug not in by_task),
    )


# -- words -------------------------------------------------------------------------------


def tokens_text(count: int) -> str:
    """``812``, ``9.5 k``, ``950 k``, ``72.6 M``, ``1.2 B``: a count of tokens, compact."""
    if count < 1000:
        return str(count)
    for unit, name in ((10**3, "k"), (10**6, "M"), (10**9, "B")):
        value = count / unit
        shown = f"{value:.1f}" if value < 99.95 else f"{value:.0f}"
        if float(shown) < 1000 or name == "B":  # 999,950 is 1.0 M, not 1000 k
            break
    return f"{shown} {name}"


def dollars(amount: Decimal) -> str:
    """``$1,234.50``: two decimals, thousands separated."""
    return f"${amount:,.2f}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def cost_line(cost: ReleaseCost) -> str:
    """``💸 $50.62 · 72.6 M tokens · 2 members``, and how many handoffs reported no cost or no
    tokens (unknown, never counted as zero); ``💸 cost unknown: …`` when none reported
    anything."""
    total, members = cost.total, _plural(cost.members, "member")
    if total.units == 0:
        have = "has" if cost.members == 1 else "have"
        return f"💸 cost unknown: the {members} {have} no handoffs on record"
    handoffs = _plural(total.units, "handoff")
    if total.nothing == total.units:
        which = "the one handoff" if total.units == 1 else f"none of the {handoffs}"
        said = "did not report" if total.units == 1 else "reported"
        return f"💸 cost unknown: {which} {said} tokens or cost ({members})"
    parts = [
        f"💸 {dollars(total.cost)}" if total.known_cost else "💸 cost unknown",
        f"{tokens_text(total.tokens)} tokens" if total.known_tokens else "tokens unknown",
        members,
    ]
    if total.no_cost and total.no_cost == total.no_tokens == total.nothing:
        parts.append(f"{total.nothing} of {handoffs} reported nothing (unknown, not counted as $0)")
    else:
        missing = []
        if total.no_cost and total.known_cost:
            missing.append(f"{total.no_cost} of {handoffs} reported no cost")
        if total.no_tokens and total.known_tokens:
            missing.append(
                f"{total.no_tokens} no tokens"
                if missing
                else f"{total.no_tokens} of {handoffs} reported no tokens"
            )
        if missing:
            parts.append(", ".join(missing) + " (unknown, not counted as 0)")
    if cost.silent:
        parts.append(f"{_plural(cost.silent, 'member')} without a handoff")
    return " · ".join(parts)


def _tally_text(tally: Tally) -> str:
    if tally.known_cost:
        return dollars(tally.cost)
    if tally.known_tokens:
        return f"{tokens_text(tally.tokens)} tokens"
    return "unknown"


def breakdown_line(cost: ReleaseCost, *, top: int = TOP_MODELS) -> str | None:
    """``by model: opus $40.10 · sonnet $10.52 · 1 more``: the models that cost most (a
    model's cost, else its tokens, else unknown); None when no handoff named a model or
    reported anything."""
    if not cost.total.units or cost.total.nothing == cost.total.units:
        return None
    named = [(model, tally) for model, tally in cost.by_model.items() if model is not None]
    if not named:
        return None
    shown = [f"{model[:40]} {_tally_text(tally)}" for model, tally in named[:top]]
    rest = len(cost.by_model) - len(shown)
    if rest:
        shown.append(f"{rest} more")
    return "by model: " + " · ".join(shown)


def stages_line(cost: ReleaseCost, *, top: int = 4) -> str | None:
    """``by stage: building → submitted $30.00 · …``: the moves that cost most."""
    if not cost.total.units or cost.total.nothing == cost.total.units:
        return None
    stages = list(cost.by_stage.items())
    shown = [f"{stage} {_tally_text(tally)}" for stage, tally in stages[:top]]
    if len(stages) > top:
        shown.append(f"{len(stages) - top} more")
    return "by stage: " + " · ".join(shown)
