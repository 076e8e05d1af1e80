"""Several processes on one database: a lease per gateway shard, and the identify slots.

``shard_leases``: one owner per shard at a time, with an expiry it renews and a fencing token
that goes up at each take. ``identify_slots``: the next moment a process may IDENTIFY in a
rate-limit bucket (Discord's ``max_concurrency`` per 5 s), shared by every process.
``releases.notes_intent_by``: which process began posting a release's notes, so another
process leaves them alone while it runs.

Revision ID: 0013_shard_leases
Revises: 0012_growth_indexes
Create Date: 2026-12-07 15:00:00

Written by hand: two new tables and a plain ADD COLUMN (DROP COLUMN in place on the way down,
SQLite 3.35+, as 0011), so ``releases`` is never rebuilt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

# revision identifiers, used by Alembic.
revision: str = "0013_shard_leases"
down_revision: str | Sequence[str] | None = "0012_growth_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "shard_leases",
        sa.Column("shard_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shard_count", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("token", sa.Integer(), nullable=False),
        sa.Column("expires_at", store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("shard_id", name=op.f("pk_shard_leases")),
    )
    op.create_table(
        "identify_slots",
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("taken_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_identify_slots")),
    )

    op.add_column("releases", sa.Column("notes_intent_by", sa.String(length=120), nullable=True))


def downgrade() -> None:
    """Downgrade schema: the leases and slots go (held only while processes run), and who
    began posting notes (only read while they are posted)."""
    op.drop_column("releases", "notes_intent_by")
    op.drop_table("identify_slots")
    op.drop_table("shard_leases")
