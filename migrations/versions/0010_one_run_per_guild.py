"""One run driver: at most one running run per guild, and the notice a run owes.

- ``uq_ship_runs_one_running_per_guild`` replaces the index that allowed one running run per
  *release*: a ship, a rollback and a redeploy of one guild exclude each other in the
  database, so two processes whose transactions overlap cannot start two at once.
- ``ship_runs.notice_at`` and ``told_at``: a run that ends failed or interrupted owes the
  operator a notice (and a ping); ``notice_at`` is set before it is sent (a resume after a
  crash looks for it in the thread first), ``told_at`` once it and its ping went out. Runs
  that ended before this revision owe nothing: ``told_at`` is their ``finished_at``.
- The run kind ``redeploy`` needs no DDL (the kind column has no CHECK, see 0007).

Revision ID: 0010_one_run_per_guild
Revises: 0009_reminders
Create Date: 2026-12-07 05:00:00

Written by hand: plain ADD COLUMN and CREATE/DROP INDEX (no table rebuild).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

# revision identifiers, used by Alembic.
revision: str = "0010_one_run_per_guild"
down_revision: str | Sequence[str] | None = "0009_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("ship_runs", sa.Column("notice_at", store.types.UTCDateTime(), nullable=True))
    op.add_column("ship_runs", sa.Column("told_at", store.types.UTCDateTime(), nullable=True))
    op.execute("UPDATE ship_runs SET told_at = finished_at WHERE finished_at IS NOT NULL")
    op.drop_index("uq_ship_runs_one_running_per_release", table_name="ship_runs")
    op.create_index(
        "uq_ship_runs_one_running_per_guild",
        "ship_runs",
        ["guild_id"],
        unique=True,
        sqlite_where=_RUNNING,
        postgresql_where=_RUNNING,
    )


def downgrade() -> None:
    """Downgrade schema. Redeploy runs go (0009 cannot read their kind); the rest keep their
    steps, and the notices they still owe are forgotten."""
    op.execute(
        "DELETE FROM ship_steps WHERE run_id IN (SELECT id FROM ship_runs WHERE kind = 'redeploy')"
    )
    op.execute("DELETE FROM ship_runs WHERE kind = 'redeploy'")
    op.drop_index("uq_ship_runs_one_running_per_guild", table_name="ship_runs")
    op.create_index(
        "uq_ship_runs_one_running_per_release",
        "ship_runs",
        ["release_id"],
        unique=True,
        sqlite_where=_RUNNING,
        postgresql_where=_RUNNING,
    )
    with op.batch_alter_table("ship_runs", schema=None) as batch_op:
        # the rebuild would lose the partial index's WHERE: dropped and made again as 0007 did
        batch_op.drop_index("uq_ship_runs_one_running_per_release")
        batch_op.drop_column("told_at")
        batch_op.drop_column("notice_at")
        batch_op.create_index(
            "uq_ship_runs_one_running_per_release",
            ["release_id"],
            unique=True,
            sqlite_where=_RUNNING,
            postgresql_where=_RUNNING,
        )
