"""Rollback runs: a rollback is a run of its own, recorded step by step like a ship.

``ship_runs`` gains ``kind`` (``ship`` or ``rollback``; every run before this is a ship), and
for a rollback the version production runs again after it (``restores_version``) and the
operator's reason. Its steps (revert, deploy, health, flip, seal, notes) are ``ship_steps``
rows; the lease, the fence and the one-running-run-per-release index are the ship's.

Revision ID: 0007_rollback_runs
Revises: 0006_rollbacks
Create Date: 2026-12-02 09:10:00

Written by hand: plain ALTER TABLE ADD COLUMN (no rebuild, so the offline SQL works); the
kind has no CHECK (SQLite adds one only by rebuilding the table), SQLAlchemy refuses an
unknown kind on write.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007_rollback_runs"
down_revision: str | Sequence[str] | None = "0006_rollbacks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "ship_runs",
        sa.Column(
            "kind",
            sa.Enum(
                "ship",
                "rollback",
                name="run_kind",
                native_enum=False,
                create_constraint=False,
                length=20,
            ),
            server_default="ship",
            nullable=False,
        ),
    )
    op.add_column("ship_runs", sa.Column("restores_version", sa.Integer(), nullable=True))
    op.add_column("ship_runs", sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema. Rollback runs go with the column that says what they are: 0006 would
    read each as a ship (and a running one would be resumed as a ship)."""
    op.execute(
        "DELETE FROM ship_steps WHERE run_id IN (SELECT id FROM ship_runs WHERE kind = 'rollback')"
    )
    op.execute("DELETE FROM ship_runs WHERE kind = 'rollback'")
    with op.batch_alter_table("ship_runs", schema=None) as batch_op:
        # The rebuild would lose the partial index's WHERE: dropped and made again as 0004 did.
        batch_op.drop_index("uq_ship_runs_one_running_per_release")
        batch_op.drop_column("reason")
        batch_op.drop_column("restores_version")
        batch_op.drop_column("kind")
        batch_op.create_index(
            "uq_ship_runs_one_running_per_release",
            ["release_id"],
            unique=True,
            sqlite_where=_RUNNING,
            postgresql_where=_RUNNING,
        )
