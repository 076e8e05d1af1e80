"""Sealed-bid sizing: the PM's, the PO's (``/task size``) and the developer's (a handoff's
``size:`` header) forecasts of a task's size, hidden from one another until it ships; then its
actual size, measured at the ship by the ``[sizing]`` thresholds, shown beside them.

The rules are pure functions (:func:`parse_size`, :func:`measure`, :func:`actual_size`,
:func:`sizing_view`, :func:`reveal_line`, :func:`sealed_line`); :class:`Sizing` is the service
that takes a PM's or PO's bid.

The actual size, with the defaults (each bound is "less than"; ``[sizing]`` changes them):

====== ========== ====================== ===========
 size   cost       time building→submitted tokens
====== ========== ====================== ===========
 S      < $2       < 1 h                  < 2 M
 M      < $10      < 4 h                  < 10 M
 L      < $40      < 1 day                < 40 M
 XL     the rest   the rest               the rest
====== ========== ====================== ===========

It is measured on the configured ``basis`` (cost by default) when the task has that
measurement, else on the first of cost, time, tokens it has; with none, it is unknown. A
task's cost (or tokens) is the sum over its handoff moves (stage events with a handoff), and
is known only when every one of them reported it: a handoff that reported nothing is unknown,
never zero, so a partial sum is not used. Its time is the time it spent building before each
submission (the moves building → submitted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value

from conductor.errors import InvalidInput, InvalidMove
from conductor.queries import require_task
from conductor.reminders import ReminderConfigError, parse_duration
from conductor.states import SIZES, BidRole, Size, SizeBasis, TaskState
from conductor.views import Actor, BidView, ReleaseView, SizingView
from store.models import StageEvent, Task, TaskBid
from store.types import utcnow

if TYPE_CHECKING:
    from store.db import Database, Session

log = logging.getLogger(__name__)

# -- sizes in words ----------------------------------------------------------------------------

#: the words a handoff's ``size:`` header (or anyone) may use for a size, lowercase
SIZE_WORDS: Mapping[str, Size] = {
    "s": Size.S,
    "small": Size.S,
    "m": Size.M,
    "medium": Size.M,
    "l": Size.L,
    "large": Size.L,
    "xl": Size.XL,
    "x-large": Size.XL,
    "extra-large": Size.XL,
    "extra large": Size.XL,
    "extralarge": Size.XL,
}
SIZE_HINT = "S, M, L or XL (or small, medium, large, extra-large)"

#: how each role is written in the lines the team reads
ROLE_LABEL: Mapping[BidRole, str] = {BidRole.PM: "PM", BidRole.PO: "PO", BidRole.DEV: "Dev"}
#: the roles in the order they are shown
ROLES: tuple[BidRole, ...] = (BidRole.PM, BidRole.PO, BidRole.DEV)
#: the states in which a PM or PO may still bid or change a bid (bids close at submission)
OPEN_FOR_BIDS = frozenset({TaskState.CREATED, TaskState.DESIGNED, TaskState.BUILDING})


def parse_size(text: str) -> Size | None:
    """``"L"``, ``"large"``, ``"Extra-Large"``, ``"xl"``: the size; None for anything else."""
    words = " ".join(text.strip().lower().replace("_", "-").split())
    return SIZE_WORDS.get(words)


# -- [sizing] ----------------------------------------------------------------------------------


class SizingConfigError(ValueError):
    """A malformed ``[sizing]`` table; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The upper bounds (exclusive) of S, M and L on one measurement; above L is XL."""

    s: float
    m: float
    l: float  # noqa: E741

    def size(self, value: float) -> Size:
        for size, bound in zip(SIZES, (self.s, self.m, self.l), strict=False):
            if value < bound:
                return size
        return Size.XL


#: the defaults: dollars, seconds, tokens
DEFAULT_COST = Thresholds(2, 10, 40)
DEFAULT_TIME = Thresholds(3600, 4 * 3600, 24 * 3600)
DEFAULT_TOKENS = Thresholds(2_000_000, 10_000_000, 40_000_000)


@dataclass(frozen=True, slots=True)
class SizingConfig:
    """The ``[sizing]`` table: what the actual size is measured on first, and the bounds."""

    basis: SizeBasis = SizeBasis.COST
    cost: Thresholds = DEFAULT_COST
    time: Thresholds = DEFAULT_TIME
    tokens: Thresholds = DEFAULT_TOKENS

    def thresholds(self, basis: SizeBasis) -> Thresholds:
        return {
            SizeBasis.COST: self.cost,
            SizeBasis.TIME: self.time,
            SizeBasis.TOKENS: self.tokens,
        }[basis]


_SETTINGS = ("basis", "cost", "time", "tokens")


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise SizingConfigError(f"sizing.{name}: expected a number (got {value!r})")
    try:
        number = float(Decimal(str(value).strip().lstrip("$").replace(",", "").replace("_", "")))
    except (InvalidOperation, ValueError):
        raise SizingConfigError(f"sizing.{name}: expected a number (got {value!r})") from None
    if not number > 0 or number == float("inf"):
        raise SizingConfigError(f"sizing.{name}: expected a number above 0 (got {value!r})")
    return number


def _seconds(value: object, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(value, name)  # a plain number: seconds
    try:
        every = parse_duration(value, name, may_be_off=False)
    except ReminderConfigError as error:
        raise SizingConfigError(str(error).replace("reminders.", "sizing.", 1)) from None
    if every is None:  # may_be_off=False never gives None
        raise SizingConfigError(f"sizing.{name}: cannot be off (got {value!r})")
    return every.total_seconds()


def _bounds(value: object, name: str, read: Any) -> Thresholds:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise SizingConfigError(
            f"sizing.{name}: expected three bounds, the tops of S, M and L "
            f"(e.g. {name} = {_EXAMPLES[name]}), got {value!r}"
        )
    s, m, l = (read(v, f"{name}[{i}]") for i, v in enumerate(value))  # noqa: E741
    if not s < m < l:
        raise SizingConfigError(f"sizing.{name}: the bounds must grow (S < M < L), got {value!r}")
    return Thresholds(s, m, l)


_EXAMPLES = {"cost": "[2, 10, 40]", "time": '["1h", "4h", "1d"]', "tokens": "[2e6, 1e7, 4e7]"}


def parse_sizing_config(table: Mapping[str, Any] | None) -> SizingConfig:
    """The ``[sizing]`` table, validated (None or empty: the defaults). ``basis`` is
    ``cost``, ``time`` or ``tokens``; ``cost`` (dollars), ``time`` (durations such as
    ``"90m"``, or seconds) and ``tokens`` each give three growing bounds: the tops of S, M, L."""
    values = dict(table or {})
    unknown = sorted(set(values) - set(_SETTINGS))
    if unknown:
        raise SizingConfigError(
            f"sizing.{unknown[0]}: not a setting (the settings are {', '.join(_SETTINGS)})"
        )
    parsed: dict[str, Any] = {}
    if "basis" in values:
        try:
            parsed["basis"] = SizeBasis(str(values["basis"]).strip().lower())
        except ValueError:
            raise SizingConfigError(
                f"sizing.basis: expected cost, time or tokens (got {values['basis']!r})"
            ) from None
    if "cost" in values:
        parsed["cost"] = _bounds(values["cost"], "cost", _number)
    if "time" in values:
        parsed["time"] = _bounds(values["time"], "time", _seconds)
    if "tokens" in values:
        parsed["tokens"] = _bounds(values["tokens"], "tokens", _number)
    return SizingConfig(**parsed)


# -- measurements and the actual size ----------------------------------------------------------


class Unit(Protocol):
    """One move of a task's timeline, as far as its size is concerned (a ``StageEvent``)."""

    @property
    def handoff_message_id(self) -> int | None: ...
    @property
    def from_state(self) -> TaskState: ...
    @property
    def to_state(self) -> TaskState: ...
    @property
    def seconds_in_previous(self) -> float | None: ...
    @property
    def tokens(self) -> int | None: ...
    @property
    def cost(self) -> Decimal | None: ...


@dataclass(frozen=True, slots=True)
class Measurements:
    """What was measured of a task: None where it is not (fully) known."""

    cost: Decimal | None = None
    seconds: float | None = None
    tokens: int | None = None

    def of(self, basis: SizeBasis) -> float | None:
        value = {
            SizeBasis.COST: self.cost,
            SizeBasis.TIME: self.seconds,
            SizeBasis.TOKENS: self.tokens,
        }[basis]
        return None if value is None else float(value)


def measure(units: Iterable[Unit]) -> Measurements:
    """A task's measurements from its moves. The reported spend is the handoff moves'; cost
    (tokens) is known only when every handoff move reported it. Time is what the task spent
    building before each submission, known once it was submitted from building."""
    handoffs = 0
    costs: list[Decimal] = []
    tokens: list[int] = []
    building: list[float] = []
    for unit in units:
        if unit.handoff_message_id is not None:
            handoffs += 1
            if unit.cost is not None:
                costs.append(unit.cost)
            if unit.tokens is not None:
                tokens.append(unit.tokens)
        if (
            unit.from_state is TaskState.BUILDING
            and unit.to_state is TaskState.SUBMITTED
            and unit.seconds_in_previous is not None
        ):
            building.append(unit.seconds_in_previous)
    return Measurements(
        cost=sum(costs, Decimal(0)) if handoffs and len(costs) == handoffs else None,
        seconds=sum(building) if building else None,
        tokens=sum(tokens) if handoffs and len(tokens) == handoffs else None,
    )


def actual_size(
    measured: Measurements, config: SizingConfig = SizingConfig()
) -> tuple[Size, SizeBasis] | None:
    """The actual size and what it was measured on: the configured basis when known, else the
    first known of cost, time, tokens; None when nothing was measured."""
    order = (config.basis, *(b for b in SizeBasis if b is not config.basis))
    for basis in order:
        value = measured.of(basis)
        if value is not None:
            return config.thresholds(basis).size(value), basis
    return None


# -- what the team reads -----------------------------------------------------------------------


def revealed(state: TaskState, actual_basis: SizeBasis | None) -> bool:
    """Bids are shown once the task shipped (and stay shown if its release is rolled back:
    the actual was measured, the forecasts are history)."""
    return state is TaskState.SHIPPED or actual_basis is not None


def sizing_view(
    state: TaskState,
    bids: Iterable[TaskBid],
    actual: Size | None,
    basis: SizeBasis | None,
) -> SizingView:
    """The sizing as it may be read now: before the reveal, who bid and never what (the sizes
    do not leave the domain), nor the actual."""
    shown = revealed(state, basis)
    ordered = sorted(bids, key=lambda b: ROLES.index(b.role))
    return SizingView(
        bids=tuple(BidView(b.role, b.bidder, b.size if shown else None) for b in ordered),
        actual=actual if shown else None,
        basis=basis if shown else None,
        revealed=shown,
    )


def hits(view: SizingView) -> bool | None:
    """Whether every forecast was the actual size (None: no forecast, or no actual)."""
    if view.actual is None or not view.bids:
        return None
    return all(b.size is view.actual for b in view.bids)


def reveal_line(view: SizingView) -> str | None:
    """``PM M · PO L · Dev L → actual XL ≠ forecast`` (``= forecast`` when every bid was
    right); roles that did not bid are left out. None before the reveal, or with neither a bid
    nor an actual."""
    if not view.revealed or (not view.bids and view.actual is None):
        return None
    forecast = " · ".join(f"{ROLE_LABEL[b.role]} {b.size}" for b in view.bids) or "no forecast"
    if view.actual is None:
        return f"{forecast} → actual unknown (nothing measured)"
    hit = hits(view)
    mark = "" if hit is None else (" = forecast" if hit else " ≠ forecast")
    return f"{forecast} → actual {view.actual}{mark}"


def sealed_line(view: SizingView) -> str:
    """Before the ship: ``sized by PM, Dev · sealed until it ships``; after it, the reveal."""
    if view.revealed:
        return reveal_line(view) or "no forecast, nothing measured"
    if not view.bids:
        return "no bids yet · sealed until it ships"
    return f"sized by {', '.join(ROLE_LABEL[b.role] for b in view.bids)} · sealed until it ships"


def notes_suffix(view: SizingView | None) -> str:
    """The reveal as a second, indented line under a member of the release notes ("" when
    there is nothing to reveal)."""
    line = reveal_line(view) if view is not None else None
    return f"\n  📏 {line}" if line else ""


# -- the service -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BidResult:
    """A PM's or PO's bid as taken: the task, the role, the size, and the size it replaced."""

    slug: str
    role: BidRole
    size: Size
    previous: Size | None = None
    #: the roles that have bid on the task now (their sizes stay sealed)
    bidders: tuple[BidRole, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return self.previous is not None and self.previous is not self.size


@dataclass(frozen=True, slots=True)
class Ballot:
    """What a PM or PO is asked before choosing a size: the task, and their own bid so far."""

    slug: str
    title: str
    role: BidRole
    current: Size | None = None


def bids_closed(slug: str, state: TaskState, role: BidRole) -> str:
    if state in OPEN_FOR_BIDS:  # back in building after a ❌ or a handoff back
        return (
            f"`{slug}` was submitted once already: bids close at the first submission "
            "(sealed-bid sizing: a forecast is made before the work is seen), so the "
            f"{ROLE_LABEL[role]} bid can no longer be placed or changed."
        )
    return (
        f"`{slug}` is {state.value}: bids close at submission (sealed-bid sizing), so the "
        f"{ROLE_LABEL[role]} bid can no longer be placed or changed."
    )


async def _closed(session: Session, task: Task) -> bool:
    """Bids on ``task`` are closed: it is submitted (or later), or was submitted once (sent
    back to building since: the bidders have seen the work, a bid now is no forecast)."""
    if task.state not in OPEN_FOR_BIDS:
        return True
    return (
        await session.scalar(
            select(StageEvent.id)
            .where(StageEvent.task_id == task.id, StageEvent.to_state == TaskState.SUBMITTED)
            .limit(1)
        )
    ) is not None


class Sizing:
    """Sealed bids: one per role and task; the PM's and the PO's may change until the task is
    submitted. The role check (who holds the PM or PO role) is the edge's."""

    def __init__(self, db: Database, config: SizingConfig | None = None) -> None:
        self.db = db
        self.config = config or SizingConfig()

    async def ballot(self, guild_id: int, slug: str, role: BidRole) -> Ballot:
        """The task ``slug`` as ``role`` may bid on it now (read-only): the same refusals as
        :meth:`bid`, answered before the size is asked for."""
        self._not_dev(role)
        async with self.db.read() as session:
            task = await require_task(session, guild_id, slug)
            if await _closed(session, task):
                raise InvalidMove(bids_closed(task.slug, task.state, role))
            mine = await session.scalar(
                select(TaskBid.size).where(TaskBid.task_id == task.id, TaskBid.role == role)
            )
            return Ballot(task.slug, task.title, role, mine)

    @staticmethod
    def _not_dev(role: BidRole) -> None:
        if role is BidRole.DEV:
            raise InvalidInput(
                "The developer's bid comes from the agent's handoff (a `size: L` header), "
                "not from `/task size`."
            )

    async def bid(
        self, guild_id: int, slug: str, role: BidRole, size: Size, actor: Actor
    ) -> BidResult:
        """Place or change ``role``'s bid on the task ``slug``. Raises
        :class:`~conductor.errors.NotFound` for an unknown task, :class:`InvalidMove` once
        the task is submitted (or later), :class:`InvalidInput` for the developer's role."""

        self._not_dev(role)
        async with self.db.write() as session:
            task = await require_task(session, guild_id, slug)
            if await _closed(session, task):
                raise InvalidMove(bids_closed(task.slug, task.state, role))
            rows = {
                b.role: b
                for b in await session.scalars(select(TaskBid).where(TaskBid.task_id == task.id))
            }
            mine = rows.get(role)
            previous = mine.size if mine is not None else None
            now = utcnow()
            if mine is None:
                dialect = session.get_bind().dialect.name
                insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
                await session.execute(
                    insert(TaskBid)
                    .values(
                        task_id=task.id,
                        role=role,
                        size=size,
                        bidder=actor.label,
                        bidder_id=actor.id,
                        at=now,
                    )
                    .on_conflict_do_nothing()
                )
            elif mine.size is not size:
                mine.size, mine.bidder, mine.bidder_id, mine.changed_at = (
                    size,
                    actor.label,
                    actor.id,
                    now,
                )
            bidders = tuple(r for r in ROLES if r in rows or r is role)
        log.info(
            "bid guild=%s task=%s role=%s by=%s%s",
            guild_id, task.slug, role.value, actor.label, " (changed)" if previous else "",
        )  # fmt: skip
        return BidResult(task.slug, role, size, previous, bidders)


# -- the ship and the loads the views need -----------------------------------------------------


async def size_shipped(session: Session, tasks: Sequence[Task], config: SizingConfig) -> None:
    """Measure each shipped task and set its actual size and basis, in the ship's own
    transaction: one read of their moves, one UPDATE per (size, basis) found."""
    if not tasks:
        return
    ids = [t.id for t in tasks]
    units: dict[int, list[Any]] = {i: [] for i in ids}
    rows = await session.execute(
        select(
            StageEvent.task_id,
            StageEvent.handoff_message_id,
            StageEvent.from_state,
            StageEvent.to_state,
            StageEvent.seconds_in_previous,
            StageEvent.tokens,
            StageEvent.cost,
        ).where(StageEvent.task_id.in_(ids))
    )
    for row in rows:
        units[row.task_id].append(row)
    groups: dict[tuple[Size, SizeBasis] | None, list[Task]] = {}
    for task in tasks:
        groups.setdefault(actual_size(measure(units[task.id]), config), []).append(task)
    for found, members in groups.items():
        size, basis = found if found is not None else (None, None)
        for task in members:
            set_committed_value(task, "actual_size", size)
            set_committed_value(task, "actual_basis", basis)
        await session.execute(
            update(Task)
            .where(Task.id.in_([t.id for t in members]))
            .values(actual_size=size, actual_basis=basis)
            .execution_options(synchronize_session=False)
        )


async def load_bids(session: Session, task_ids: Iterable[int]) -> dict[int, list[TaskBid]]:
    """The bids of tasks, by task id, in one query."""
    wanted = list(task_ids)
    found: dict[int, list[TaskBid]] = {i: [] for i in wanted}
    if wanted:
        for bid in await session.scalars(select(TaskBid).where(TaskBid.task_id.in_(wanted))):
            found[bid.task_id].append(bid)
    return found


async def with_sizing(session: Session, guild_id: int, release: ReleaseView) -> ReleaseView:
    """``release`` with each member's sizing (sealed or revealed, as the member stands), read
    in one query whatever the number of members."""
    slugs = [m.slug for m in release.members]
    if not slugs:
        return release
    rows = await session.execute(
        select(Task.slug, Task.state, Task.actual_size, Task.actual_basis, TaskBid)
        .outerjoin(TaskBid, TaskBid.task_id == Task.id)
        .where(Task.guild_id == guild_id, Task.slug.in_(slugs))
    )
    found: dict[str, tuple[TaskState, list[TaskBid], Size | None, SizeBasis | None]] = {}
    for slug, state, actual, basis, bid in rows:
        entry = found.setdefault(slug, (state, [], actual, basis))
        if bid is not None:
            entry[1].append(bid)
    members = tuple(
        replace(m, sizing=sizing_view(*found[m.slug])) if m.slug in found else m
        for m in release.members
    )
    return replace(release, members=members)
