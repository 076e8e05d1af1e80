"""The states of tasks and releases, shared by the parser, the machines and the store."""

from __future__ import annotations

from enum import StrEnum


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


#: Releases in these states hold the guild's single active slot.
ACTIVE_RELEASE_STATES: tuple[ReleaseState, ...] = (ReleaseState.ASSEMBLING, ReleaseState.ASSEMBLED)
TERMINAL_RELEASE_STATES: tuple[ReleaseState, ...] = (ReleaseState.SHIPPED, ReleaseState.ABANDONED)
