"""Persistence: the SQLAlchemy models and the async database handle. No Discord here."""

from store.db import Database
from store.models import (
    Base,
    GuildConfig,
    HandoffMessage,
    Release,
    ReviewApproval,
    ReviewRequest,
    StageEvent,
    Task,
    TaskDependency,
)

__all__ = [
    "Base",
    "Database",
    "GuildConfig",
    "HandoffMessage",
    "Release",
    "ReviewApproval",
    "ReviewRequest",
    "StageEvent",
    "Task",
    "TaskDependency",
]
