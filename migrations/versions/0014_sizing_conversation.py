"""What the train knows of a task beyond its moves: sealed size bids, the measured size, the
conversation.

``task_bids``: one sealed forecast (S / M / L / XL) per role (PM, PO, developer) and task.
``tasks.actual_size`` / ``actual_basis``: the size measured when the task shipped, and on
what (cost, time building, tokens). ``task_comments``: replies to a task's review request (or
in its thread), a ❌'s reason tied to the move it explains, a developer's re-bid.
``guild_configs.pm_role_id`` / ``po_role_id``: who may bid, as ``/conductor setup`` binds it.

Revision ID: 0014_sizing_conversation
Revises: 0013_shard_leases
Create Date: 2026-12-08 00:00:00

Written by hand: two new tables and plain ADD COLUMNs without a CHECK (as 0011), so
``tasks`` is never rebuilt; DROP COLUMN in place on the way down (SQLite 3.35+).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

# revision identifiers, used by Alembic.
revision: str = "0014_sizing_conversation"
down_revision: str | Sequence[str] | None = "0013_shard_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str, check: bool = True) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=check, length=20)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "task_bids",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("role", _enum("bid_role", "pm", "po", "dev"), nullable=False),
        sa.Column("size", _enum("bid_size", "S", "M", "L", "XL"), nullable=False),
        sa.Column("bidder", sa.String(length=100), nullable=False),
        sa.Column("bidder_id", sa.BigInteger(), nullable=True),
        sa.Column("at", store.types.UTCDateTime(), nullable=False),
        sa.Column("changed_at", store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_bids_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "role", name=op.f("pk_task_bids")),
    )
    op.create_table(
        "task_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("comment_kind", "reply", "reason", "rebid"), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", store.types.UTCDateTime(), nullable=False),
        sa.Column("stage_event_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["review_requests.id"],
            name=op.f("fk_task_comments_request_id_review_requests"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["stage_event_id"],
            ["stage_events.id"],
            name=op.f("fk_task_comments_stage_event_id_stage_events"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_comments_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_comments")),
        sa.UniqueConstraint("message_id", name=op.f("uq_task_comments_message_id")),
    )
    op.create_index(
        op.f("ix_task_comments_task_id_at_id"), "task_comments", ["task_id", "at", "id"]
    )
    op.create_index(op.f("ix_task_comments_stage_event_id"), "task_comments", ["stage_event_id"])
    op.add_column(
        "tasks",
        sa.Column("actual_size", _enum("actual_size", "S", "M", "L", "XL", check=False)),
    )
    op.add_column(
        "tasks",
        sa.Column("actual_basis", _enum("actual_basis", "cost", "time", "tokens", check=False)),
    )
    op.add_column("guild_configs", sa.Column("pm_role_id", sa.BigInteger(), nullable=True))
    op.add_column("guild_configs", sa.Column("po_role_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Downgrade schema: the bids, the measured sizes and the conversation's replies go (the
    handoffs' notes stay where they were, in ``handoff_messages``), and the PM and PO roles
    ``/conductor setup`` bound."""
    op.drop_column("guild_configs", "po_role_id")
    op.drop_column("guild_configs", "pm_role_id")
    op.drop_column("tasks", "actual_basis")
    op.drop_column("tasks", "actual_size")
    op.drop_index(op.f("ix_task_comments_stage_event_id"), table_name="task_comments")
    op.drop_index(op.f("ix_task_comments_task_id_at_id"), table_name="task_comments")
    op.drop_table("task_comments")
    op.drop_table("task_bids")
