"""Rollbacks: a shipped release can be rolled back by an operator (who, when, why).

The release state ``rolled_back`` is a plain string value (the state column has no CHECK
constraint); this adds where the rollback is recorded.

Revision ID: 0006_rollbacks
Revises: 0005_handoff_cursors
Create Date: 2026-12-01 14:20:00

Written by hand: SQLite changes the state CHECK only by rebuilding the table; PostgreSQL
alters it in place (a rebuild there would have to move every foreign key that points at
``releases``).
"""

from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa
from alembic import op

import store.types

# revision identifiers, used by Alembic.
revision: str = "0006_rollbacks"
down_revision: str | Sequence[str] | None = "0005_handoff_cursors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_OLD_STATES = "state IN ('assembling', 'assembled', 'shipped', 'abandoned')"
_NEW_STATES = "state IN ('assembling', 'assembled', 'shipped', 'abandoned', 'rolled_back')"


def _releases(states: str) -> sa.Table:
    """``releases`` as 0005 left it (with the given state CHECK): SQLite changes a CHECK only by
    rebuilding the table, and batch mode rebuilds from this instead of reflecting, so the same
    SQL comes out online and offline (``--sql``), CHECKs included."""
    dt = store.types.UTCDateTime
    return sa.Table(
        "releases",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("opened_by", sa.String(length=100), nullable=False),
        sa.Column("opened_by_id", sa.BigInteger(), nullable=True),
        sa.Column("opened_at", dt(), nullable=False),
        sa.Column("assembled_at", dt(), nullable=True),
        sa.Column("assembled_by", sa.String(length=100), nullable=True),
        sa.Column("shipped_at", dt(), nullable=True),
        sa.Column("shipped_by", sa.String(length=100), nullable=True),
        sa.Column("shipped_by_id", sa.BigInteger(), nullable=True),
        sa.Column("abandoned_at", dt(), nullable=True),
        sa.Column("abandoned_by", sa.String(length=100), nullable=True),
        sa.Column("abandon_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("rc_branch", sa.String(length=255), nullable=True),
        sa.Column("merge_sha", sa.String(length=64), nullable=True),
        sa.Column("notes_thread_id", sa.BigInteger(), nullable=True),
        sa.Column("seal_status", sa.String(length=20), nullable=True),
        sa.Column("seal_summary", sa.Text(), nullable=True),
        sa.Column("seal_checked_at", dt(), nullable=True),
        sa.Column("seal_duration_ms", sa.Integer(), nullable=True),
        sa.Column("seal_results", sa.JSON(), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("seal_error", sa.Text(), nullable=True),
        sa.Column("notes_posted_at", dt(), nullable=True),
        sa.Column("notes_message_id", sa.BigInteger(), nullable=True),
        sa.Column("rc_base", sa.String(length=64), nullable=True),
        sa.Column("rc_head", sa.String(length=64), nullable=True),
        sa.Column("rc_merges", sa.JSON(), nullable=True),
        sa.Column("rc_tests_status", sa.String(length=20), nullable=True),
        sa.Column("rc_tests_at", dt(), nullable=True),
        sa.Column("rc_tests_duration_ms", sa.Integer(), nullable=True),
        sa.Column("rc_tests_tail", sa.Text(), nullable=True),
        sa.Column("rc_tests_log", sa.Text(), nullable=True),
        sa.Column("notes_intent_at", dt(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_releases"),
        sa.UniqueConstraint("guild_id", "slug", name="uq_releases_guild_id_slug"),
        sa.UniqueConstraint("guild_id", "version", name="uq_releases_guild_id_version"),
        sa.CheckConstraint(states, name="ck_releases_release_state"),
        sa.CheckConstraint(
            "seal_status IN ('green', 'red', 'error')", name="ck_releases_seal_status"
        ),
        sa.Index(
            "uq_releases_one_active_per_guild",
            "guild_id",
            unique=True,
            sqlite_where=sa.text("state IN ('assembling', 'assembled')"),
            postgresql_where=sa.text("state IN ('assembling', 'assembled')"),
        ),
    )


def _recreate() -> Literal["always", "never"]:
    """SQLite rebuilds the table (from ``copy_from``); any other database alters it in place."""
    return "always" if op.get_context().dialect.name == "sqlite" else "never"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table(
        "releases", copy_from=_releases(_OLD_STATES), recreate=_recreate()
    ) as batch_op:
        batch_op.add_column(sa.Column("rolled_back_at", store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("rolled_back_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("rolled_back_by_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("rollback_reason", sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f("ck_releases_release_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_releases_release_state"), sa.text(_NEW_STATES))


def downgrade() -> None:
    """Downgrade schema. A rolled-back release goes back to shipped: 0005 knows no other
    state for it (the rollback's who, when and why go with the columns)."""
    op.execute("UPDATE releases SET state = 'shipped' WHERE state = 'rolled_back'")
    new = _releases(_NEW_STATES)
    for name, kind in (
        ("rolled_back_at", store.types.UTCDateTime()),
        ("rolled_back_by", sa.String(length=100)),
        ("rolled_back_by_id", sa.BigInteger()),
        ("rollback_reason", sa.Text()),
    ):
        new.append_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("releases", copy_from=new, recreate=_recreate()) as batch_op:
        batch_op.drop_constraint(op.f("ck_releases_release_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_releases_release_state"), sa.text(_OLD_STATES))
        batch_op.drop_column("rollback_reason")
        batch_op.drop_column("rolled_back_by_id")
        batch_op.drop_column("rolled_back_by")
        batch_op.drop_column("rolled_back_at")
