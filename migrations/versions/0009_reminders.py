"""Reminders: what each condition that nags was told, so that a restart repeats nothing.

The conditions: a release left assembling or assembled, a red seal nobody acted on, a lock
held too long. One row per guild, kind and subject (the release's slug, or ``lock``) while
the condition holds: when it began (``since``), how many reminders went out, the last one,
and the one being sent (its text), which a restart looks for in Discord before sending it
again. A new table, nothing to backfill: a condition already holding gets its first reminder
once it has held for an interval, as if the bot had been away.

Revision ID: 0009_reminders
Revises: 0008_locks
Create Date: 2026-12-01 15:00:00

Written by hand after autogenerate.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

# revision identifiers, used by Alembic.
revision: str = "0009_reminders"
down_revision: str | Sequence[str] | None = "0008_locks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "reminders",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "release",
                "red_seal",
                "lock",
                name="reminder_kind",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("since", store.types.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_sent_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("intent_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("intent_text", sa.Text(), nullable=True),
        sa.Column("failed_at", store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("guild_id", "kind", "subject", name=op.f("pk_reminders")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("reminders")
