"""Plain, frozen read models handed out by the services: no ORM rows leave the domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from conductor.costs import ReleaseCost
from conductor.states import (
    AuthorKind,
    BidRole,
    CommentKind,
    HandoffOutcome,
    LockEventKind,
    RcTestsStatus,
    ReleaseState,
    ReviewStatus,
    SealStatus,
    Size,
    SizeBasis,
    StepName,
    TaskState,
)

if TYPE_CHECKING:
    from conductor.releases.runs.store import RunView


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: a Discord user (name + id) or an agent (name only)."""

    name: str
    id: int | None = None

    @property
    def label(self) -> str:
        return self.name[:100]


@dataclass(frozen=True, slots=True)
class DependencyView:
    slug: str
    #: None when no task of that slug is known yet
    state: TaskState | None
    release_slug: str | None = None

    def blocks(self, release_slug: str | None) -> bool:
        """True unless the dependency is shipped or rides ``release_slug``."""
        if self.state is TaskState.SHIPPED:
            return False
        return release_slug is None or self.release_slug != release_slug

    @property
    def state_label(self) -> str:
        return self.state.value if self.state else "unknown task"


@dataclass(frozen=True, slots=True)
class BidView:
    """One role's sealed bid as it may be read now: ``size`` is None until the task ships."""

    role: BidRole
    bidder: str
    size: Size | None = None


@dataclass(frozen=True, slots=True)
class SizingView:
    """A task's sealed-bid sizing (``conductor.sizing.sizing_view``): before the ship, who
    has bid and nothing else; after it, each bid, the actual size and what it was measured on."""

    bids: tuple[BidView, ...] = ()
    actual: Size | None = None
    basis: SizeBasis | None = None
    revealed: bool = False


@dataclass(frozen=True, slots=True)
class TaskView:
    slug: str
    title: str
    kind: str
    branch: str | None
    state: TaskState
    release_slug: str | None
    author_name: str
    author_id: int | None
    dependencies: tuple[DependencyView, ...] = ()
    created_at: datetime | None = None
    state_since: datetime | None = None
    #: the note of its last handoff (applied or noted) that carried one, whole; loaded only
    #: where the release notes need it (``load_release_views(notes=True)``)
    last_note: str | None = None
    #: the sealed-bid sizing, where it was loaded (the card, the release notes); None: not read
    sizing: SizingView | None = None


@dataclass(frozen=True, slots=True)
class TaskCursor:
    """Where a page of tasks ends, most recently changed first: the next page starts after
    it (a keyset: the database seeks to it in an index, it never counts rows to skip)."""

    updated_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of ``/task list``: its tasks, each one's cursor, and whether older ones
    follow the last."""

    tasks: tuple[TaskView, ...]
    cursors: tuple[TaskCursor, ...]
    more: bool

    def after(self, shown: int) -> TaskCursor | None:
        """Where the next page starts when the first ``shown`` tasks were shown; None when
        nothing follows them."""
        if shown <= 0 or (shown >= len(self.tasks) and not self.more):
            return None
        return self.cursors[shown - 1]


@dataclass(frozen=True, slots=True)
class RcTestsView:
    """The test command's verdict on a release's RC head."""

    status: RcTestsStatus
    at: datetime
    duration_ms: int
    #: the output's last lines
    tail: str
    #: the file with the whole output
    log: str | None = None

    @property
    def passed(self) -> bool:
        return self.status is RcTestsStatus.PASSED


@dataclass(frozen=True, slots=True)
class ReleaseView:
    slug: str
    name: str
    state: ReleaseState
    opened_by: str
    opened_by_id: int | None
    opened_at: datetime
    version: int | None = None
    assembled_at: datetime | None = None
    shipped_at: datetime | None = None
    shipped_by: str | None = None
    shipped_by_id: int | None = None
    abandoned_at: datetime | None = None
    abandon_reason: str | None = None
    #: an operator's rollback after the ship: who, when and why
    rolled_back_at: datetime | None = None
    rolled_back_by: str | None = None
    rolled_back_by_id: int | None = None
    rollback_reason: str | None = None
    notes_thread_id: int | None = None
    rc_branch: str | None = None
    rc_base: str | None = None
    rc_head: str | None = None
    #: each member's merge commit on the RC branch
    rc_merges: dict[str, str] = field(default_factory=dict)
    #: the test command on the RC head (None: not run)
    rc_tests: RcTestsView | None = None
    merge_sha: str | None = None
    #: members in merge order (dependencies first)
    members: tuple[TaskView, ...] = ()
    seal_status: SealStatus | None = None
    seal_summary: str | None = None
    seal_checked_at: datetime | None = None
    seal_duration_ms: int | None = None
    seal_results: tuple[dict[str, Any], ...] = ()
    seal_error: str | None = None
    notes_intent_at: datetime | None = None
    notes_posted_at: datetime | None = None
    notes_message_id: int | None = None
    #: opened over a held train: that release, its verdict then, who confirmed and when
    held_over_slug: str | None = None
    held_over_seal: SealStatus | None = None
    held_confirmed_by: str | None = None
    held_confirmed_by_id: int | None = None
    held_confirmed_at: datetime | None = None
    #: opened over a rollback stopped half way: the revert on main then
    held_over_revert: str | None = None
    #: what its members' handoffs reported (tokens, dollars); loaded only where it is shown
    #: (``load_release_views(spend=True)``: ``/release status``, the notes)
    cost: ReleaseCost | None = None


@dataclass(frozen=True, slots=True)
class LockView:
    """A guild's release lock: who holds it, why, since when."""

    guild_id: int
    holder: str
    holder_id: int | None
    reason: str
    since: datetime

    def is_holder(self, actor: Actor) -> bool:
        return self.holder_id == actor.id if actor.id is not None else self.holder == actor.name


@dataclass(frozen=True, slots=True)
class LockEventView:
    kind: LockEventKind
    actor: str
    actor_id: int | None
    at: datetime
    reason: str
    previous_holder: str | None = None
    previous_holder_id: int | None = None
    previous_reason: str | None = None
    held_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class RedeployView:
    """A redeploy of a shipped release: who, when, why, and how it ended (``done``,
    ``failed``, ``interrupted``, ``running``)."""

    by: str
    at: datetime
    reason: str | None
    status: str


@dataclass(frozen=True, slots=True)
class ShippedView:
    """One release of ``/release history``: shipped (rolled back or not), with how many
    seals it got and its redeploys, oldest first."""

    release: ReleaseView
    seals: int
    #: production runs it now (the newest release still shipped)
    in_production: bool = False
    redeploys: tuple[RedeployView, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusView:
    active: ReleaseView | None
    #: what stands between the active release and its next step, in words
    blockers: tuple[str, ...]
    last_shipped: ReleaseView | None
    #: the guild's release lock, when one stands
    lock: LockView | None = None
    #: the train is held: production's release is red or error, neither re-sealed green nor
    #: rolled back (``/release open`` asks for a confirmation)
    held: bool = False
    #: a rollback of production's release stopped half way: main reverted, the release still
    #: shipped (it holds the train too)
    half: HalfRollback | None = None


@dataclass(frozen=True, slots=True)
class HalfRollback:
    """A rollback of production's release (the last shipped, still shipped) that stopped half
    way: main carries its revert, but the run ended failed or interrupted at ``step`` (the
    deploy, the health gate, the flip), so main and what production runs, or what the
    release says, disagree. Until a rollback of it ends done, or a release is opened over it
    (confirmed), it holds the train."""

    release_slug: str
    version: int | None
    #: the run's tag (``run 3``), who started it, why it stopped
    run: str
    started_by: str
    #: the revert commit on main
    revert: str
    step: StepName
    interrupted: bool
    why: str


@dataclass(frozen=True, slots=True)
class Hold:
    """What holds the train: production's release, when its seal is red or error
    (``sealed``) or a rollback of it stopped half way (``half``), or both."""

    release: ReleaseView
    sealed: bool
    half: HalfRollback | None = None

    @property
    def slug(self) -> str:
        return self.release.slug


@dataclass(frozen=True, slots=True)
class BoardView:
    """What the deployments board shows, read in one snapshot: the status (the lock, the
    active release, production) and the newest releases, newest first. The pinned Discord
    board and the ``/deployments`` web page both read it."""

    status: StatusView
    recent: tuple[ReleaseView, ...]
    #: the run in progress (a ship, a rollback, a redeploy) with its steps; None: none runs
    running: RunView | None = None


@dataclass(frozen=True, slots=True)
class StageView:
    from_state: TaskState
    to_state: TaskState
    trigger: str
    actor: str
    actor_id: int | None
    at: datetime
    seconds_in_previous: float | None
    model: str | None
    tokens: int | None
    cost: Decimal | None
    #: a ❌'s move back to building: the reviewer's reply that says why
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Approver:
    user_id: int
    name: str


@dataclass(frozen=True, slots=True)
class ReviewView:
    request_id: int
    task_slug: str
    task_title: str
    branch: str | None
    author_name: str
    author_id: int | None
    round: int
    status: ReviewStatus
    required: int
    approvers: tuple[Approver, ...]
    channel_id: int | None
    message_id: int | None
    #: who closed the round (the approvers, or who asked for changes)
    closed_by: str | None = None
    task_state: TaskState | None = None

    @property
    def count(self) -> int:
        return len(self.approvers)


@dataclass(frozen=True, slots=True)
class NoteView:
    at: datetime
    author_name: str
    to_state: TaskState | None
    note: str


#: an entry of a task's conversation: a handoff's note, or a ``task_comments`` row's kind
EntryKind = Literal["note", "reply", "reason", "rebid"]


@dataclass(frozen=True, slots=True)
class EntryCursor:
    """Where an entry of a conversation sits, oldest first: its time, then its source (0 a
    handoff's note, 1 a comment), then its row id. A page reads what lies before it."""

    at: datetime
    source: int
    id: int


@dataclass(frozen=True, slots=True)
class ConversationEntry:
    kind: EntryKind
    author_name: str
    at: datetime
    #: whole as written (the card clips it)
    text: str
    cursor: EntryCursor
    #: a handoff's note: the state the handoff moved the task to
    to_state: TaskState | None = None


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """The newest entries of a task's conversation before a cursor, oldest first (a chat:
    the newest at the bottom), and whether older ones precede the first."""

    entries: tuple[ConversationEntry, ...]
    more: bool

    def before(self, shown: int) -> EntryCursor | None:
        """Where the earlier page starts when the newest ``shown`` entries were shown; None
        when nothing precedes them."""
        if shown <= 0 or (shown >= len(self.entries) and not self.more):
            return None
        return self.entries[len(self.entries) - shown].cursor


@dataclass(frozen=True, slots=True)
class TaskCard:
    task: TaskView
    review: ReviewView | None
    timeline: tuple[StageView, ...]
    notes: tuple[NoteView, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the newest entries of the conversation (handoffs' notes, replies, reasons, re-bids)
    conversation: ConversationPage = ConversationPage((), False)

    @property
    def latest_note(self) -> NoteView | None:
        return self.notes[-1] if self.notes else None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message seen in a handoff channel, as the Discord layer hands it over."""

    guild_id: int
    channel_id: int
    message_id: int
    author_id: int | None
    author_name: str
    author_kind: AuthorKind
    text: str
    #: read back from the channel's history by the catch-up (in order), not heard live
    replay: bool = False


@dataclass(frozen=True, slots=True)
class HandoffResult:
    outcome: HandoffOutcome
    #: the user-facing reason of a rejection
    error: str | None = None
    task: TaskView | None = None
    moved_from: TaskState | None = None
    #: a review request opened by this handoff: the Discord layer posts it
    review: ReviewView | None = None
    #: the message had been processed before; nothing changed this time
    duplicate: bool = False
    #: the task is a member of a release (so the board shows the move)
    in_release: bool = False


@dataclass(frozen=True, slots=True)
class IncomingReply:
    """A member's message that may answer a review request: a reply to a message
    (``targets``: the message it replies to) or a message in a thread (``targets``: the
    thread's id, which is its starter message's)."""

    guild_id: int
    channel_id: int
    message_id: int
    author_id: int
    author_name: str
    text: str
    targets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ReplyResult:
    #: False when nothing was kept; ``reason`` says why
    kept: bool
    reason: str
    task_slug: str | None = None
    kind: CommentKind | None = None
    #: the message was kept before; nothing changed this time
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Reactor:
    """Someone reacting on a review message, with what Discord knows about them."""

    user_id: int
    name: str
    is_bot: bool = False
    #: None when no reviewer role is configured (anyone may review)
    has_reviewer_role: bool | None = None


@dataclass(frozen=True, slots=True)
class ReactionResult:
    #: False when the reaction changed nothing; ``reason`` says why
    counted: bool
    reason: str
    review: ReviewView | None
    task_state: TaskState | None = None
    became_reviewed: bool = False
    sent_back: bool = False
    #: the task is a member of a release (so the board shows the move)
    in_release: bool = False


@dataclass(frozen=True, slots=True)
class GuildConfigView:
    """What ``/conductor setup`` bound for one guild; None fields fall back to the config
    file."""

    guild_id: int
    handoff_channel_ids: tuple[int, ...] = ()
    reviews_channel_id: int | None = None
    notes_channel_id: int | None = None
    deployments_channel_id: int | None = None
    operator_role_id: int | None = None
    reviewer_role_id: int | None = None
    pm_role_id: int | None = None
    po_role_id: int | None = None
    board_message_id: int | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None
