"""The RC branch as built by git assembly, and the test command's verdict on it.

``rc_base`` and ``rc_head`` are main's commit the RC branch grew from and the RC head (one
merge commit over main, so ``git revert -m 1`` undoes a whole release); ``rc_merges`` holds
each member's merge commit. ``rc_tests_*`` keep the test command's result on the RC head:
passed or failed, when, how long, the last lines, and where the whole output is.

Revision ID: 0003_rc_assembly
Revises: 0002_seal_history
Create Date: 2026-12-01 12:00:00

Written by hand after autogenerate: columns added with plain ALTER TABLE, no rebuild.
``rc_branch`` and ``merge_sha`` exist since 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

# revision identifiers, used by Alembic.
revision: str = "0003_rc_assembly"
down_revision: str | Sequence[str] | None = "0002_seal_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RC_TESTS_STATUSES = ("passed", "failed")


def upgrade() -> None:
    """Upgrade schema."""
    # Plain ALTER TABLE ADD COLUMN, no table rebuild (so the offline SQL stays possible). The
    # status has no CHECK: SQLite could add one only by rebuilding the table; SQLAlchemy
    # refuses an unknown status on write (``validate_strings``).
    op.add_column("releases", sa.Column("rc_base", sa.String(length=64), nullable=True))
    op.add_column("releases", sa.Column("rc_head", sa.String(length=64), nullable=True))
    op.add_column("releases", sa.Column("rc_merges", sa.JSON(), nullable=True))
    op.add_column(
        "releases",
        sa.Column(
            "rc_tests_status",
            sa.Enum(
                *RC_TESTS_STATUSES,
                name="rc_tests_status",
                native_enum=False,
                create_constraint=False,
                length=20,
            ),
            nullable=True,
        ),
    )
    op.add_column("releases", sa.Column("rc_tests_at", store.types.UTCDateTime(), nullable=True))
    op.add_column("releases", sa.Column("rc_tests_duration_ms", sa.Integer(), nullable=True))
    op.add_column("releases", sa.Column("rc_tests_tail", sa.Text(), nullable=True))
    op.add_column("releases", sa.Column("rc_tests_log", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_column("rc_tests_log")
        batch_op.drop_column("rc_tests_tail")
        batch_op.drop_column("rc_tests_duration_ms")
        batch_op.drop_column("rc_tests_at")
        batch_op.drop_column("rc_tests_status")
        batch_op.drop_column("rc_merges")
        batch_op.drop_column("rc_head")
        batch_op.drop_column("rc_base")
