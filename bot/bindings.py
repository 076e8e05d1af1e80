"""Which channels and roles Conductor uses in a guild: what ``/conductor setup`` stored wins,
then the config file (names or ids), resolved against the guild as it is now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import discord

from bot.settings import Settings
from conductor.views import GuildConfigView


def find_channel(guild: discord.Guild, wanted: str | int | None) -> discord.TextChannel | None:
    """A text channel given by id, ``#name`` or name (case-insensitive)."""
    if wanted is None or wanted == "":
        return None
    text = str(wanted)
    if text.isdigit() and isinstance(channel := guild.get_channel(int(text)), discord.TextChannel):
        return channel
    name = text.lstrip("#").lower()
    return discord.utils.find(lambda c: c.name.lower() == name, guild.text_channels)


def find_role(guild: discord.Guild, wanted: str | int | None) -> discord.Role | None:
    """A role given by id or by name (case-insensitive)."""
    if wanted is None or wanted == "":
        return None
    text = str(wanted)
    if text.isdigit() and (role := guild.get_role(int(text))) is not None:
        return role
    return discord.utils.find(lambda r: r.name.lower() == text.lower(), guild.roles)


#: where a binding came from: ``/conductor setup``, the config file, or nowhere
BindingSource = Literal["setup", "config", "unset"]


@dataclass(frozen=True, slots=True)
class Binding:
    """One binding: what was asked for, where it came from, and what it resolves to now."""

    wanted: str | None
    source: BindingSource


@dataclass(frozen=True, slots=True)
class Bindings:
    handoff_channel_ids: frozenset[int]
    reviews_channel: discord.TextChannel | None
    notes_channel: discord.TextChannel | None
    deployments_channel: discord.TextChannel | None
    operator_role: discord.Role | None
    reviewer_role: discord.Role | None
    #: the unresolved bindings by name, for ``/conductor config`` and for refusals
    wanted: dict[str, Binding]
    #: who may bid with ``/task size`` (config file only: ``/conductor setup`` binds neither)
    pm_role: discord.Role | None = None
    po_role: discord.Role | None = None

    def is_handoff_channel(self, channel_id: int) -> bool:
        return channel_id in self.handoff_channel_ids


def _pick(stored: int | None, configured: str | None) -> Binding:
    if stored is not None:
        return Binding(str(stored), "setup")
    if configured:
        return Binding(configured, "config")
    return Binding(None, "unset")


def resolve(guild: discord.Guild, settings: Settings, stored: GuildConfigView | None) -> Bindings:
    """The guild's bindings now. A name or id that no longer resolves gives None, and the
    ``wanted`` entry still says what was asked for."""
    s = stored or GuildConfigView(guild.id)
    if s.handoff_channel_ids:
        handoffs = frozenset(s.handoff_channel_ids)
        handoff_binding = Binding(", ".join(str(i) for i in s.handoff_channel_ids), "setup")
    else:
        found = (find_channel(guild, w) for w in settings.handoff_channels)
        handoffs = frozenset(c.id for c in found if c is not None)
        handoff_binding = (
            Binding(", ".join(settings.handoff_channels), "config")
            if settings.handoff_channels
            else Binding(None, "unset")
        )
    wanted = {
        "handoff channels": handoff_binding,
        "reviews channel": _pick(s.reviews_channel_id, settings.reviews_channel),
        "notes channel": _pick(s.notes_channel_id, settings.notes_channel),
        "deployments channel": _pick(s.deployments_channel_id, settings.deployments_channel),
        "operator role": _pick(s.operator_role_id, settings.operator_role),
        "reviewer role": _pick(s.reviewer_role_id, settings.reviewer_role),
        "PM role": _pick(s.pm_role_id, settings.pm_role),
        "PO role": _pick(s.po_role_id, settings.po_role),
    }
    return Bindings(
        handoff_channel_ids=handoffs,
        reviews_channel=find_channel(guild, wanted["reviews channel"].wanted),
        notes_channel=find_channel(guild, wanted["notes channel"].wanted),
        deployments_channel=find_channel(guild, wanted["deployments channel"].wanted),
        operator_role=find_role(guild, wanted["operator role"].wanted),
        reviewer_role=find_role(guild, wanted["reviewer role"].wanted),
        pm_role=find_role(guild, wanted["PM role"].wanted),
        po_role=find_role(guild, wanted["PO role"].wanted),
        wanted=wanted,
    )
