"""Indexes that keep the reads flat as the tables grow.

- ``ix_tasks_guild_id_updated_at_id`` and ``ix_tasks_guild_id_state_updated_at_id``:
  ``/task list`` (a page, most recently changed first, by keyset) and the autocomplete's
  newest tasks read one page from an index instead of sorting every task of the guild. The
  second replaces ``ix_tasks_guild_id_state``, which is its prefix.
- ``ix_tasks_guild_id_state_slug``: ``/release add``'s autocomplete seeks the reviewed tasks
  whose slug starts with what was typed, not every task with that prefix.
- ``ix_releases_guild_id_id``: the board's newest releases (``ORDER BY id DESC LIMIT 12``)
  read from an index, not every release of the guild sorted.
- ``ix_ship_runs_release_id``: ``/release status`` and the board look for a release's
  rollback stopped half way; without it, every run of every release was read.

Revision ID: 0012_growth_indexes
Revises: 0011_held_over_revert
Create Date: 2026-12-07 15:00:00

Written by hand: CREATE and DROP INDEX only (no table rebuild).
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012_growth_indexes"
down_revision: str | Sequence[str] | None = "0011_held_over_revert"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_tasks_guild_id_updated_at_id", "tasks", ["guild_id", "updated_at", "id"])
    op.create_index(
        "ix_tasks_guild_id_state_updated_at_id",
        "tasks",
        ["guild_id", "state", "updated_at", "id"],
    )
    op.create_index("ix_tasks_guild_id_state_slug", "tasks", ["guild_id", "state", "slug"])
    op.drop_index("ix_tasks_guild_id_state", table_name="tasks")
    op.create_index("ix_ship_runs_release_id", "ship_runs", ["release_id"])
    op.create_index("ix_releases_guild_id_id", "releases", ["guild_id", "id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_releases_guild_id_id", table_name="releases")
    op.drop_index("ix_ship_runs_release_id", table_name="ship_runs")
    op.create_index("ix_tasks_guild_id_state", "tasks", ["guild_id", "state"])
    op.drop_index("ix_tasks_guild_id_state_slug", table_name="tasks")
    op.drop_index("ix_tasks_guild_id_state_updated_at_id", table_name="tasks")
    op.drop_index("ix_tasks_guild_id_updated_at_id", table_name="tasks")
