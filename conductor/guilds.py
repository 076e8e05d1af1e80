"""Per-guild bindings stored by ``/conductor setup`` (they override the config file), and the
id of the guild's pinned board message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conductor.errors import InvalidInput
from conductor.views import Actor, GuildConfigView
from store.models import GuildConfig

if TYPE_CHECKING:
    from store.db import Database

#: a guild may bind at most this many handoff channels
MAX_HANDOFF_CHANNELS = 10

#: the fields ``bind`` may set; ``None`` leaves a field as it is
BINDABLE = (
    "reviews_channel_id",
    "notes_channel_id",
    "deployments_channel_id",
    "operator_role_id",
    "reviewer_role_id",
    "pm_role_id",
    "po_role_id",
)


def _view(row: GuildConfig) -> GuildConfigView:
    return GuildConfigView(
        guild_id=row.guild_id,
        handoff_channel_ids=tuple(row.handoff_channel_ids or ()),
        reviews_channel_id=row.reviews_channel_id,
        notes_channel_id=row.notes_channel_id,
        deployments_channel_id=row.deployments_channel_id,
        operator_role_id=row.operator_role_id,
        reviewer_role_id=row.reviewer_role_id,
        pm_role_id=row.pm_role_id,
        po_role_id=row.po_role_id,
        board_message_id=row.board_message_id,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


class GuildConfigs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, guild_id: int) -> GuildConfigView | None:
        async with self.db.read() as session:
            row = await session.get(GuildConfig, guild_id)
            return _view(row) if row else None

    async def bind(
        self,
        guild_id: int,
        actor: Actor,
        *,
        handoff_channel_ids: tuple[int, ...] | None = None,
        clear: frozenset[str] = frozenset(),
        **ids: int | None,
    ) -> GuildConfigView:
        """Set the given bindings (others stay); ``clear`` names fields to unset so the
        config file applies again."""
        unknown = (set(ids) | set(clear)) - set(BINDABLE) - {"handoff_channel_ids"}
        if unknown:
            raise ValueError(f"not bindable: {sorted(unknown)}")
        if handoff_channel_ids is not None:
            handoff_channel_ids = tuple(dict.fromkeys(handoff_channel_ids))
            if len(handoff_channel_ids) > MAX_HANDOFF_CHANNELS:
                raise InvalidInput(f"At most {MAX_HANDOFF_CHANNELS} handoff channels.")
        async with self.db.write() as session:
            row = await session.get(GuildConfig, guild_id)
            if row is None:
                row = GuildConfig(guild_id=guild_id, handoff_channel_ids=[])
                session.add(row)
            if handoff_channel_ids is not None:
                row.handoff_channel_ids = list(handoff_channel_ids)
            for name, value in ids.items():
                if value is not None:
                    setattr(row, name, value)
            for name in clear:
                setattr(row, name, [] if name == "handoff_channel_ids" else None)
            row.updated_by = actor.label
            await session.flush()
            return _view(row)

    async def set_board_message(
        self, guild_id: int, message_id: int | None, *, replacing: int | None
    ) -> int | None:
        """Record ``message_id`` as the guild's board if the board recorded is still
        ``replacing`` (the one the caller read: none, or one deleted); returns the board
        recorded now. Two processes that both found no board and both posted one record
        one: the other is told which, and deletes its own."""
        async with self.db.write() as session:
            row = await session.get(GuildConfig, guild_id)
            if row is None:
                row = GuildConfig(guild_id=guild_id, handoff_channel_ids=[])
                session.add(row)
            if row.board_message_id == replacing:
                row.board_message_id = message_id
            return row.board_message_id
