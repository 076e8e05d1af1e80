"""The tables: tasks and their dependencies, the stage timeline, raw handoffs and how far each
handoff channel is handled, reviews, releases, the release lock, reminders, per-guild
configuration, the gateway's shard leases and identify slots (several processes), and what the
train knows of a task beyond its moves: its sealed size bids and its conversation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from conductor.states import (
    ACTIVE_RELEASE_STATES,
    BidRole,
    CommentKind,
    HandoffOutcome,
    LockEventKind,
    RcTestsStatus,
    ReleaseState,
    ReminderKind,
    ReviewStatus,
    RunKind,
    RunStatus,
    SealStatus,
    Size,
    SizeBasis,
    StepStatus,
    TaskState,
)
from store.types import DecimalText, UTCDateTime, utcnow

# Stable constraint names, so alembic can find and drop them (SQLite batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _str_enum(enum: type[StrEnum], name: str, *, check: bool = True) -> Enum:
    # Portable VARCHAR + CHECK rather than a native enum: the same on SQLite and PostgreSQL,
    # and adding a state later is a plain constraint change. ``check=False`` for a column
    # added after the table: SQLite can add it only without a CHECK short of a table rebuild
    # (which offline migrations cannot do); SQLAlchemy still refuses unknown values on write.
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=check,
        length=20,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


#: the active releases' condition, as the one-active index has it: a query that says it
#: in these words (not with bound values) may read that partial index on SQLite too
ACTIVE_RELEASE = text(
    "state IN (" + ", ".join(f"'{state.value}'" for state in ACTIVE_RELEASE_STATES) + ")"
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        Decimal: DecimalText(),
    }


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("guild_id", "slug"),
        Index(None, "release_id"),
        # /task list and the autocomplete read a page in these, newest first (0012)
        Index(None, "guild_id", "updated_at", "id"),
        Index(None, "guild_id", "state", "updated_at", "id"),
        # /release add's autocomplete: reviewed tasks by a slug's prefix (0012)
        Index(None, "guild_id", "state", "slug"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    slug: Mapped[str] = mapped_column(String(63))
    title: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(40), default="")
    branch: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[TaskState] = mapped_column(_str_enum(TaskState, "task_state"))
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    #: order in which the task joined its release; merge order is derived from it and the deps
    release_position: Mapped[int | None] = mapped_column(Integer)
    author_id: Mapped[int | None] = mapped_column(BigInteger)
    author_name: Mapped[str] = mapped_column(String(100), default="")
    #: unknown handoff header keys, merged across handoffs
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: when the task entered its current state: the "time in previous stage" of the next move
    state_since: Mapped[datetime] = mapped_column(default=utcnow)
    #: the size measured when the task shipped, and on what (``[sizing]``): set once, at the ship
    actual_size: Mapped[Size | None] = mapped_column(_str_enum(Size, "actual_size", check=False))
    actual_basis: Mapped[SizeBasis | None] = mapped_column(
        _str_enum(SizeBasis, "actual_basis", check=False)
    )

    dependencies: Mapped[list[TaskDependency]] = relationship(
        back_populates="task",
        cascade="all, delete-orphan",
        order_by="TaskDependency.position",
        lazy="raise",
    )
    release: Mapped[Release | None] = relationship(back_populates="members", lazy="raise")

    @property
    def dependency_slugs(self) -> list[str]:
        return [d.depends_on for d in self.dependencies]


class TaskDependency(Base):
    """A task needs ``depends_on`` shipped first. A slug, not a key: it may name a task not
    yet known."""

    __tablename__ = "task_dependencies"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on: Mapped[str] = mapped_column(String(63), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    task: Mapped[Task] = relationship(back_populates="dependencies", lazy="raise")


class StageEvent(Base):
    """One move of a task: the timeline ``/task show`` renders."""

    __tablename__ = "stage_events"
    __table_args__ = (
        Index(None, "task_id", "id"),
        Index(None, "release_id"),
        Index(None, "handoff_message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    from_state: Mapped[TaskState] = mapped_column(_str_enum(TaskState, "from_state"))
    to_state: Mapped[TaskState] = mapped_column(_str_enum(TaskState, "to_state"))
    trigger: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(100))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    seconds_in_previous: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(100))
    tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[Decimal | None] = mapped_column()
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    #: the Discord message of the handoff behind the move (known before any row is written)
    handoff_message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("handoff_messages.message_id")
    )


class TaskBid(Base):
    """One role's sealed forecast of a task's size: hidden from the other roles until the task
    ships. One per role and task; the PM's and the PO's may change until the task is
    submitted, the developer's is the first ``size:`` its handoffs gave (later different ones
    are ``rebid`` entries of the conversation)."""

    __tablename__ = "task_bids"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[BidRole] = mapped_column(_str_enum(BidRole, "bid_role"), primary_key=True)
    size: Mapped[Size] = mapped_column(_str_enum(Size, "bid_size"))
    bidder: Mapped[str] = mapped_column(String(100))
    bidder_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the last change of a PM's or PO's bid (before the task was submitted)
    changed_at: Mapped[datetime | None] = mapped_column()


class TaskComment(Base):
    """The task's conversation beside its handoffs' notes: a reply to its review request (or
    a message in that request's thread), the reason of a ❌ (``stage_event_id``: the move it
    explains), a developer's re-bid. ``message_id`` makes a message seen twice one entry."""

    __tablename__ = "task_comments"
    __table_args__ = (
        UniqueConstraint("message_id"),
        Index(None, "task_id", "at", "id"),
        # is this ❌'s move explained yet (a reply after the ❌), and SET NULL on its delete
        Index(None, "stage_event_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    kind: Mapped[CommentKind] = mapped_column(_str_enum(CommentKind, "comment_kind"))
    author: Mapped[str] = mapped_column(String(100))
    author_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    stage_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("stage_events.id", ondelete="SET NULL")
    )
    #: the review request a reply answered (a ❌'s reason is looked for in its own round)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_requests.id", ondelete="SET NULL")
    )


class HandoffMessage(Base):
    """Every message seen in a handoff channel, kept raw whatever became of it."""

    __tablename__ = "handoff_messages"
    __table_args__ = (
        UniqueConstraint("message_id"),
        Index(None, "task_id"),
        CheckConstraint("author_kind IN ('user', 'bot', 'webhook')", name="author_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    author_id: Mapped[int | None] = mapped_column(BigInteger)
    author_name: Mapped[str] = mapped_column(String(100))
    author_kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[HandoffOutcome] = mapped_column(
        _str_enum(HandoffOutcome, "outcome"), default=HandoffOutcome.PENDING
    )
    #: the user-facing reason for a rejection
    error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    #: the note (the text after the headers), kept as the task's conversation
    note: Mapped[str | None] = mapped_column(Text)


class HandoffCursor(Base):
    """How far a handoff channel is handled: every message up to ``message_id`` is stored.
    It moves only over messages stored in order, never past one that failed to store, so the
    catch-up that starts after it reads back everything the database could not take."""

    __tablename__ = "handoff_cursors"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    channel_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReviewRequest(Base):
    """One review round of a task: posted when it becomes submitted."""

    __tablename__ = "review_requests"
    __table_args__ = (
        UniqueConstraint("task_id", "round"),
        UniqueConstraint("message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    status: Mapped[ReviewStatus] = mapped_column(
        _str_enum(ReviewStatus, "review_status"), default=ReviewStatus.OPEN
    )
    required: Mapped[int] = mapped_column(Integer)
    #: the submitter of this round: their own approval never counts
    author_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_by: Mapped[str | None] = mapped_column(String(100))

    approvals: Mapped[list[ReviewApproval]] = relationship(
        cascade="all, delete-orphan", order_by="ReviewApproval.at", lazy="raise"
    )
    task: Mapped[Task] = relationship(lazy="raise")


class ReviewApproval(Base):
    __tablename__ = "review_approvals"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("review_requests.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("guild_id", "slug"),
        UniqueConstraint("guild_id", "version"),
        # the board's newest releases, by id (0012)
        Index(None, "guild_id", "id"),
        # The singleton: at most one non-terminal release per guild, held by the database
        # itself so it survives races and several processes.
        Index(
            "uq_releases_one_active_per_guild",
            "guild_id",
            unique=True,
            sqlite_where=ACTIVE_RELEASE,
            postgresql_where=ACTIVE_RELEASE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(80))
    state: Mapped[ReleaseState] = mapped_column(_str_enum(ReleaseState, "release_state"))
    opened_by: Mapped[str] = mapped_column(String(100))
    opened_by_id: Mapped[int | None] = mapped_column(BigInteger)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    assembled_at: Mapped[datetime | None] = mapped_column()
    assembled_by: Mapped[str | None] = mapped_column(String(100))
    shipped_at: Mapped[datetime | None] = mapped_column()
    shipped_by: Mapped[str | None] = mapped_column(String(100))
    shipped_by_id: Mapped[int | None] = mapped_column(BigInteger)
    abandoned_at: Mapped[datetime | None] = mapped_column()
    abandoned_by: Mapped[str | None] = mapped_column(String(100))
    abandon_reason: Mapped[str | None] = mapped_column(Text)
    #: the operator's rollback after the ship: who, when and why
    rolled_back_at: Mapped[datetime | None] = mapped_column()
    rolled_back_by: Mapped[str | None] = mapped_column(String(100))
    rolled_back_by_id: Mapped[int | None] = mapped_column(BigInteger)
    rollback_reason: Mapped[str | None] = mapped_column(Text)
    # Opened over a held train (production's last ship red or error, neither re-sealed green
    # nor rolled back): which release, its verdict then, and who confirmed it, when.
    held_over_slug: Mapped[str | None] = mapped_column(String(100))
    held_over_seal: Mapped[SealStatus | None] = mapped_column(
        _str_enum(SealStatus, "held_over_seal", check=False)
    )
    held_confirmed_by: Mapped[str | None] = mapped_column(String(100))
    held_confirmed_by_id: Mapped[int | None] = mapped_column(BigInteger)
    held_confirmed_at: Mapped[datetime | None] = mapped_column()
    #: opened over a rollback of that release stopped half way: the revert on main then
    held_over_revert: Mapped[str | None] = mapped_column(String(64))
    #: the deploy counter (v1, v2, …), given when the release ships
    version: Mapped[int | None] = mapped_column(Integer)
    rc_branch: Mapped[str | None] = mapped_column(String(255))
    #: main's commit the RC branch was built from, and the RC head (one merge commit over it)
    rc_base: Mapped[str | None] = mapped_column(String(64))
    rc_head: Mapped[str | None] = mapped_column(String(64))
    #: each member's merge commit on the RC branch: {task slug: sha}
    rc_merges: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # The test command on the RC head, before the release may be assembled.
    rc_tests_status: Mapped[RcTestsStatus | None] = mapped_column(
        _str_enum(RcTestsStatus, "rc_tests_status", check=False)
    )
    rc_tests_at: Mapped[datetime | None] = mapped_column()
    rc_tests_duration_ms: Mapped[int | None] = mapped_column(Integer)
    #: the output's last lines (the whole output is in ``rc_tests_log``, a file)
    rc_tests_tail: Mapped[str | None] = mapped_column(Text)
    rc_tests_log: Mapped[str | None] = mapped_column(Text)
    #: main's commit after the ship: the RC head, fast-forwarded (``git revert -m 1`` undoes it)
    merge_sha: Mapped[str | None] = mapped_column(String(64))
    notes_thread_id: Mapped[int | None] = mapped_column(BigInteger)
    # The smoke seal: filled after the ship, never a gate on it.
    seal_status: Mapped[SealStatus | None] = mapped_column(_str_enum(SealStatus, "seal_status"))
    seal_summary: Mapped[str | None] = mapped_column(Text)
    seal_checked_at: Mapped[datetime | None] = mapped_column()
    seal_duration_ms: Mapped[int | None] = mapped_column(Integer)
    seal_results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    #: the seal's reason when the runner could not run (status ``error``)
    seal_error: Mapped[str | None] = mapped_column(Text)
    #: when posting the notes began: a post after it may have reached Discord unrecorded, so
    #: the next attempt looks for it before posting again
    notes_intent_at: Mapped[datetime | None] = mapped_column()
    #: the process that began posting them (a process identity): another process leaves a
    #: fresh intent to it while it runs (added after the table)
    notes_intent_by: Mapped[str | None] = mapped_column(String(120))
    #: when the release notes reached its thread: they are posted exactly once
    notes_posted_at: Mapped[datetime | None] = mapped_column()
    notes_message_id: Mapped[int | None] = mapped_column(BigInteger)
    #: optimistic lock: a concurrent change makes the loser's flush fail instead of overwriting
    row_version: Mapped[int] = mapped_column(Integer, default=1)

    members: Mapped[list[Task]] = relationship(
        back_populates="release", order_by="Task.release_position", lazy="raise"
    )

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012


class ReleaseSeal(Base):
    """Every seal a release got, newest last; the release's ``seal_*`` columns hold the
    newest, so a re-seal replaces the verdict and keeps what came before."""

    __tablename__ = "release_seals"
    __table_args__ = (Index(None, "release_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    status: Mapped[SealStatus] = mapped_column(_str_enum(SealStatus, "seal_status"))
    summary: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column()
    duration_ms: Mapped[int] = mapped_column(Integer)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: "ship" (the seal after a ship) or "reseal" (``/seal``)
    trigger: Mapped[str] = mapped_column(String(20))
    sealed_by: Mapped[str | None] = mapped_column(String(100))
    sealed_by_id: Mapped[int | None] = mapped_column(BigInteger)


_RUNNING = text("status = 'running'")


class Run(Base):
    """One run of a release: a ship, a rollback of it, or a redeploy of it (``kind``), step by
    step, held by one process at a time through a lease (an owner and an expiry it renews), so
    a crash leaves a run the next start resumes or reports. A run that ended failed or
    interrupted owes the operator a notice until ``told_at``."""

    __tablename__ = "ship_runs"
    __table_args__ = (
        # one running run per guild, whatever its kind and whatever the processes
        Index(
            "uq_ship_runs_one_running_per_guild",
            "guild_id",
            unique=True,
            sqlite_where=_RUNNING,
            postgresql_where=_RUNNING,
        ),
        Index(None, "guild_id", "status"),
        # a release's runs (a rollback stopped half way, for /release status) (0012)
        Index(None, "release_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    status: Mapped[RunStatus] = mapped_column(_str_enum(RunStatus, "ship_run_status"))
    #: a ship, a rollback or a redeploy of the release (added after the table: no CHECK, see
    #: _str_enum)
    kind: Mapped[RunKind] = mapped_column(
        _str_enum(RunKind, "run_kind", check=False), server_default=RunKind.SHIP.value
    )
    #: the deploy counter this ship deploys as (the release gets it at the flip); for a
    #: rollback or a redeploy, the version of the release it acts on
    version: Mapped[int] = mapped_column(Integer)
    #: a rollback's: the version production runs again after it (None: nothing shipped before)
    restores_version: Mapped[int | None] = mapped_column(Integer)
    #: a rollback's or a redeploy's: why, in the operator's words
    reason: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[str] = mapped_column(String(100))
    started_by_id: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    #: the process holding the run, and until when (None once it owes nothing)
    owner: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column()
    #: why it stopped, when it did not finish
    error: Mapped[str | None] = mapped_column(Text)
    #: the notice of a failed or interrupted run: when its sending began (an attempt after a
    #: crash looks for it before sending again), and when it and its ping were sent
    notice_at: Mapped[datetime | None] = mapped_column()
    told_at: Mapped[datetime | None] = mapped_column()

    steps: Mapped[list[RunStep]] = relationship(
        back_populates="run", order_by="RunStep.id", lazy="raise", cascade="all, delete-orphan"
    )


class RunStep(Base):
    __tablename__ = "ship_steps"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ship_runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(20))
    status: Mapped[StepStatus] = mapped_column(_str_enum(StepStatus, "ship_step_status"))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    #: what the step found: a summary line, a command's tail and log, a SHA
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    run: Mapped[Run] = relationship(back_populates="steps", lazy="raise")


class ReleaseLock(Base):
    """A guild's release lock (``/release lock``): while it stands, no release is opened or
    shipped. One per guild, held by the primary key, so two operators locking at once get one
    winner whatever the processes."""

    __tablename__ = "release_locks"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(100))
    holder_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    #: since when the holder holds it (a takeover starts a new since)
    since: Mapped[datetime] = mapped_column()


class LockEvent(Base):
    """Every change of a guild's lock, kept after it is released: taken, its reason changed,
    taken over (from whom), released."""

    __tablename__ = "lock_events"
    __table_args__ = (Index(None, "guild_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[LockEventKind] = mapped_column(_str_enum(LockEventKind, "lock_event_kind"))
    actor: Mapped[str] = mapped_column(String(100))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the lock's reason after the event (for ``unlocked``: the reason it was held for)
    reason: Mapped[str] = mapped_column(Text)
    #: who held it before a takeover, and why
    previous_holder: Mapped[str | None] = mapped_column(String(100))
    previous_holder_id: Mapped[int | None] = mapped_column(BigInteger)
    previous_reason: Mapped[str | None] = mapped_column(Text)
    #: since when the lock was held before this event (takeover, unlock)
    held_since: Mapped[datetime | None] = mapped_column()


class Reminder(Base):
    """The reminders of one condition of a guild (a release left open, a red seal, the lock),
    so that a restart repeats none. ``since`` is when the condition began as last seen: a
    condition that began again later is a new episode, counted afresh. A reminder is recorded
    as intended (its text) before it is sent and as sent after, so a reminder Discord took
    just before a crash is found rather than sent twice. Deleted when the condition clears."""

    __tablename__ = "reminders"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[ReminderKind] = mapped_column(
        _str_enum(ReminderKind, "reminder_kind"), primary_key=True
    )
    #: what the condition is about: the release's slug, or ``lock``
    subject: Mapped[str] = mapped_column(String(100), primary_key=True)
    since: Mapped[datetime] = mapped_column()
    #: reminders sent in this episode
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column()
    #: a reminder being sent: it may have reached Discord without being recorded as sent
    intent_at: Mapped[datetime | None] = mapped_column()
    intent_text: Mapped[str | None] = mapped_column(Text)
    #: the last try Discord refused (the next waits a while)
    failed_at: Mapped[datetime | None] = mapped_column()


class GuildConfig(Base):
    """Channels and roles bound by ``/conductor setup``; they override the config file."""

    __tablename__ = "guild_configs"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    handoff_channel_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    reviews_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    notes_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    deployments_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    operator_role_id: Mapped[int | None] = mapped_column(BigInteger)
    reviewer_role_id: Mapped[int | None] = mapped_column(BigInteger)
    #: who may bid with ``/task size`` (0014)
    pm_role_id: Mapped[int | None] = mapped_column(BigInteger)
    po_role_id: Mapped[int | None] = mapped_column(BigInteger)
    required_approvals: Mapped[int | None] = mapped_column(Integer)
    board_message_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100))


class ShardLease(Base):
    """Who holds one gateway shard of the bot (several processes on one database): one owner
    at a time, until ``expires_at`` unless renewed. ``token`` goes up by one at every take
    (a new owner, or the same one after its lease ran out): the fence, so a process whose
    lease was taken cannot renew it. ``shard_count`` is the count the holder runs with: a
    process with another count waits until no lease of that count is live."""

    __tablename__ = "shard_leases"

    shard_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    shard_count: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(120))
    token: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column()


class IdentifySlot(Base):
    """Discord's identify limit across processes: one IDENTIFY per rate-limit bucket
    (``shard_id % max_concurrency``) until ``next_at``."""

    __tablename__ = "identify_slots"

    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_at: Mapped[datetime] = mapped_column()
    #: who took the last slot (a process identity), for the logs
    taken_by: Mapped[str] = mapped_column(String(120))
