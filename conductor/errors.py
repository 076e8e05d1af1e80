"""One family of domain errors whose message is fit to show a user as it is.

The Discord layer turns any :class:`ConductorError` into an ephemeral answer with ``str(error)``;
anything else is a bug and becomes "something went wrong (ref …)".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conductor.views import Hold, LockView


class ConductorError(Exception):
    """A refusal the user can act on. ``str(error)`` is the whole user-facing message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(ConductorError):
    """An unknown task, release or review request."""


class InvalidMove(ConductorError):
    """A state machine refused a move from the current state."""


class ReleaseActive(ConductorError):
    """A second release was opened while one is active in the guild."""


class Blocked(ConductorError):
    """A task cannot join or leave a release because of its dependencies."""


class ReleaseChanged(ConductorError):
    """A concurrent command changed the release between read and write; nothing was applied."""


class InvalidInput(ConductorError):
    """A value given by the user (a name, a reason, a slug) is not acceptable."""


class SealRunning(ConductorError):
    """A seal of the same release is already running."""


class NotConfigured(ConductorError):
    """There is no ``[app]`` table, so there is nothing to seal against."""


class Locked(ConductorError):
    """The release train is locked: no release is opened or shipped until it is unlocked."""

    def __init__(self, message: str, lock: LockView) -> None:
        super().__init__(message)
        self.lock = lock


class LockHeld(ConductorError):
    """Another operator holds the lock: taking it (or releasing it) means taking it over,
    after a confirmation."""

    def __init__(self, message: str, lock: LockView) -> None:
        super().__init__(message)
        self.lock = lock


class HeldTrain(ConductorError):
    """Production's last ship is red or error, neither re-sealed green nor rolled back, or a
    rollback of it stopped half way: a new release opens over it only once an operator
    confirms (and that is recorded)."""

    def __init__(self, message: str, held: Hold) -> None:
        super().__init__(message)
        self.held = held
