"""Every state and status of the domain: tasks, releases, handoffs, reviews, seals, locks.

Shared by the parser, the machines, the store and the edge; the one module of the domain that
``store/`` imports."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class TaskState(StrEnum):
    CREATED = "created"
    DESIGNED = "designed"
    BUILDING = "building"
    SUBMITTED = "submitted"
    REVIEWED = "reviewed"
    ASSEMBLED = "assembled"
    SHIPPED = "shipped"


class ReleaseState(StrEnum):
    ASSEMBLING = "assembling"
    ASSEMBLED = "assembled"
    SHIPPED = "shipped"
    ABANDONED = "abandoned"
    #: shipped, then rolled back by an operator (production runs the release before it again)
    ROLLED_BACK = "rolled_back"


#: Releases in these states hold the guild's single active slot.
ACTIVE_RELEASE_STATES: tuple[ReleaseState, ...] = (ReleaseState.ASSEMBLING, ReleaseState.ASSEMBLED)
TERMINAL_RELEASE_STATES: tuple[ReleaseState, ...] = (
    ReleaseState.SHIPPED,
    ReleaseState.ABANDONED,
    ReleaseState.ROLLED_BACK,
)


class HandoffOutcome(StrEnum):
    PENDING = "pending"  # stored, not processed yet (or the process died mid-way)
    APPLIED = "applied"  # the task moved
    NOTED = "noted"  # a handoff to the state the task is already in: fields and note kept
    REJECTED = "rejected"  # malformed, or a move the machine refuses
    IGNORED = "ignored"  # not a handoff at all (chatter in the channel)


class ReviewStatus(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"
    SUPERSEDED = "superseded"


class SealStatus(StrEnum):
    GREEN = "green"
    RED = "red"
    ERROR = "error"


#: production's seal holds the train while it is one of these (``conductor.queries.held_by``)
TRAIN_HOLDING_SEALS: tuple[SealStatus, ...] = (SealStatus.RED, SealStatus.ERROR)


class RcTestsStatus(StrEnum):
    """The test command's verdict on a release's RC head."""

    PASSED = "passed"
    FAILED = "failed"


class RunStatus(StrEnum):
    """A run (a ship, a rollback, a redeploy): running (held by a lease), done, failed (a step
    said no), or interrupted (a step that cannot be repeated was in flight when its process
    died)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


#: a step that is over and that a resume goes past
FINISHED_STEPS: tuple[StepStatus, ...] = (StepStatus.DONE, StepStatus.SKIPPED)
#: a step that ended its run: reported, never run again by a resume
ENDING_STEPS: tuple[StepStatus, ...] = (StepStatus.FAILED, StepStatus.INTERRUPTED)


class RunKind(StrEnum):
    """What a persisted run does: ship a release, roll the last shipped one back, or deploy
    again what production runs."""

    SHIP = "ship"
    ROLLBACK = "rollback"
    REDEPLOY = "redeploy"


#: a step of any kind of run (each kind lists its own, in order: ``conductor.releases.runs``)
StepName = Literal["revert", "deploy", "health", "ship", "flip", "seal", "notes"]


class LockEventKind(StrEnum):
    """What happened to a guild's release lock: taken, its reason changed by its holder,
    taken over by another operator, released."""

    LOCKED = "locked"
    CHANGED = "changed"
    TAKEN_OVER = "taken_over"
    UNLOCKED = "unlocked"


class ReminderKind(StrEnum):
    """What a reminder nags about: a release left assembling or assembled, a red (or error)
    seal on production nobody acted on, a lock held too long."""

    RELEASE = "release"
    RED_SEAL = "red_seal"
    LOCK = "lock"


class Size(StrEnum):
    """A task's size, forecast in a sealed bid and measured when it ships (``[sizing]``)."""

    S = "S"
    M = "M"
    L = "L"
    XL = "XL"


#: smallest to largest: a forecast's error is how many steps it is off
SIZES: tuple[Size, ...] = (Size.S, Size.M, Size.L, Size.XL)


class BidRole(StrEnum):
    """Who forecasts a task's size: the PM and the PO (``/task size``), the developer (the
    ``size:`` header of the agent's handoff)."""

    PM = "pm"
    PO = "po"
    DEV = "dev"


class SizeBasis(StrEnum):
    """What a task's actual size was measured on: cost, else time building, else tokens."""

    COST = "cost"
    TIME = "time"
    TOKENS = "tokens"


class CommentKind(StrEnum):
    """An entry of a task's conversation beside the handoffs' notes: a reply to its review
    request (or in its thread), the reason a ❌ gave (a reply tied to that move), a
    developer's later size that differs from the first (kept, never counted)."""

    REPLY = "reply"
    REASON = "reason"
    REBID = "rebid"


#: who posted a handoff: a member, a bot user, or a channel webhook
AuthorKind = Literal["user", "bot", "webhook"]

#: what started a seal: the ship itself, an operator's ``/seal``, a rollback (the seal of the
#: production it left) or a redeploy
SealTrigger = Literal["ship", "reseal", "rollback", "redeploy"]
SHIP: SealTrigger = "ship"
RESEAL: SealTrigger = "reseal"
ROLLBACK: SealTrigger = "rollback"
REDEPLOY: SealTrigger = "redeploy"
