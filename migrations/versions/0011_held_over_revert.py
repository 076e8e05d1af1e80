"""A release opened over a rollback stopped half way.

``releases.held_over_revert``: when a rollback of production's release stopped after its revert
(main reverted, the release still shipped), the train is held until the rollback is finished
or an operator opens a release over it; the release opened so records the revert main carried
then, beside who confirmed it (``held_over_slug``, ``held_confirmed_*``, from 0008).

Revision ID: 0011_held_over_revert
Revises: 0010_one_run_per_guild
Create Date: 2026-12-09 10:00:00

Written by hand: a plain ADD COLUMN, and a DROP COLUMN in place (SQLite 3.35+), so
``releases`` is never rebuilt (its CHECKs and the one-active index stay as they are).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011_held_over_revert"
down_revision: str | Sequence[str] | None = "0010_one_run_per_guild"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("releases", sa.Column("held_over_revert", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Downgrade schema. What a release was opened over stays (its slug, who confirmed);
    that it was a half-finished rollback goes."""
    op.drop_column("releases", "held_over_revert")
