"""What Conductor needs in each channel it is bound to, and what breaks without it (the table
is the README's list); and the check of what the bot holds there now, shown by
``/conductor config`` and logged at start.

The table follows what the code calls: sends, replies, reactions, history reads, thread
creation, pins. Permissions are read before Discord's implicit denials (no Send Messages
hides Attach Files, no View Channel hides everything), so each one the operator must grant is
named, not only the first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import discord

from bot.bindings import Bindings

log = logging.getLogger(__name__)

#: what a channel is bound as
ChannelKind = Literal["handoffs", "reviews", "notes", "deployments"]

#: each permission as Discord's settings name it
LABELS: Mapping[str, str] = {
    "view_channel": "View Channel",
    "read_message_history": "Read Message History",
    "send_messages": "Send Messages",
    "add_reactions": "Add Reactions",
    "create_public_threads": "Create Public Threads",
    "send_messages_in_threads": "Send Messages in Threads",
    "attach_files": "Attach Files",
    "embed_links": "Embed Links",
    "pin_messages": "Pin Messages",
    "mention_everyone": "Mention @everyone, @here, and All Roles",
}


@dataclass(frozen=True, slots=True)
class Need:
    """One permission a channel needs, and what does not work without it."""

    permission: str  # a ``discord.Permissions`` flag
    breaks: str

    @property
    def label(self) -> str:
        return LABELS[self.permission]


NEEDS: Mapping[ChannelKind, tuple[Need, ...]] = {
    "handoffs": (
        Need("view_channel", "handoffs posted here are never seen"),
        Need(
            "read_message_history",
            "handoffs get no ✅/⚠️ and no reply (Discord needs it to react and reply), and "
            "those posted while Conductor was away are not read back",
        ),
        Need("add_reactions", "handoffs get no ✅ or ⚠️"),
        Need("send_messages", "a refused handoff gets no reply saying why"),
    ),
    "reviews": (
        Need("view_channel", "review requests are not posted and ✅/❌ are not seen"),
        Need("send_messages", "review requests are not posted, so nothing can be approved"),
        Need("add_reactions", "review requests come without ✅ and ❌ to tap"),
        Need(
            "read_message_history",
            "review requests get no ✅/❌ to tap, and reactions made while Conductor was "
            "away are never counted",
        ),
    ),
    "notes": (
        Need("view_channel", "no release threads, notes or alerts"),
        Need(
            "create_public_threads",
            "`/release open` creates no notes thread: the notes go to the channel itself",
        ),
        Need(
            "send_messages_in_threads",
            "the notes, seal lines and alerts are refused in the release's thread (they "
            "fall back to the channel)",
        ),
        Need(
            "send_messages",
            "the notes cannot fall back to the channel when the thread is missing or refused",
        ),
        Need(
            "read_message_history",
            "after a crash Conductor cannot see the notes it already posted, and posts them again",
        ),
        Need("attach_files", "the red alert carries no screenshots of the failed pages"),
    ),
    "deployments": (
        Need("view_channel", "no deployments board"),
        Need("send_messages", "the board is not posted"),
        Need("embed_links", "the board (an embed) is refused"),
        Need("pin_messages", "the board is posted but not pinned"),
        Need("read_message_history", "the board is not pinned (pinning needs it too)"),
    ),
}


def role_ping_need(role_name: str) -> Need:
    """What the notes channel needs when the operator role is not mentionable: a bot pings a
    role that is not mentionable only with Mention @everyone."""
    return Need(
        "mention_everyone",
        f"the red alert's ping of @{role_name} notifies nobody: the role is not mentionable",
    )


@dataclass(frozen=True, slots=True)
class Missing:
    label: str
    breaks: str


@dataclass(frozen=True, slots=True)
class ChannelCheck:
    """What the bot lacks in one bound channel (nothing: all is well there)."""

    channel_id: int
    name: str
    kinds: tuple[ChannelKind, ...]
    missing: tuple[Missing, ...]

    @property
    def mention(self) -> str:
        return f"<#{self.channel_id}>"


def needs_of(kinds: Sequence[ChannelKind], *, role_ping: str | None = None) -> list[Need]:
    """The needs of a channel bound as ``kinds``, each permission once (what it breaks joined
    when two uses need it). ``role_ping``: the name of an operator role that is not
    mentionable, when this channel holds the notes."""
    by_permission: dict[str, list[str]] = {}
    wanted = [need for kind in kinds for need in NEEDS[kind]]
    if role_ping is not None and "notes" in kinds:
        wanted.append(role_ping_need(role_ping))
    for need in wanted:
        by_permission.setdefault(need.permission, []).append(need.breaks)
    return [Need(permission, "; ".join(breaks)) for permission, breaks in by_permission.items()]


def missing(needs: Sequence[Need], held: discord.Permissions) -> tuple[Missing, ...]:
    """What of ``needs`` is not in ``held``. Without View Channel that alone is named: every
    other need follows it."""
    if not held.view_channel:
        blind = next((n for n in needs if n.permission == "view_channel"), None)
        if blind is not None:
            return (Missing(blind.label, f"Conductor cannot see this channel: {blind.breaks}"),)
    return tuple(Missing(n.label, n.breaks) for n in needs if not getattr(held, n.permission))


def held_in(
    channel: discord.abc.GuildChannel | discord.Thread, member: discord.Member
) -> discord.Permissions:
    """The member's permissions in ``channel`` (a thread: its parent's, which it inherits),
    before the implicit denials, so each one to grant is seen on its own."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        if parent is None:
            return discord.Permissions.none()
        channel = parent
    return discord.abc.GuildChannel.permissions_for(channel, member)


def check_guild(guild: discord.Guild, bindings: Bindings) -> list[ChannelCheck]:
    """Each bound channel that exists in ``guild``, with what the bot lacks there, in the
    order: handoff channels, reviews, notes, deployments."""
    bound: dict[int, tuple[discord.TextChannel, list[ChannelKind]]] = {}

    def bind(channel: discord.TextChannel | None, kind: ChannelKind) -> None:
        if channel is not None:
            bound.setdefault(channel.id, (channel, []))[1].append(kind)

    for channel_id in sorted(bindings.handoff_channel_ids):
        found = guild.get_channel(channel_id)
        bind(found if isinstance(found, discord.TextChannel) else None, "handoffs")
    bind(bindings.reviews_channel, "reviews")
    bind(bindings.notes_channel, "notes")
    bind(bindings.deployments_channel, "deployments")
    role = bindings.operator_role
    role_ping = role.name if role is not None and not role.mentionable else None
    checks = []
    for channel, kinds in bound.values():
        needs = needs_of(kinds, role_ping=role_ping)
        checks.append(
            ChannelCheck(
                channel.id, channel.name, tuple(kinds), missing(needs, held_in(channel, guild.me))
            )
        )
    return checks


def describe(check: ChannelCheck) -> str:
    """One line: each missing permission and what it breaks."""
    return "; ".join(f"{m.label} ({m.breaks})" for m in check.missing)


def log_checks(guild: discord.Guild, checks: Sequence[ChannelCheck]) -> None:
    """The check at start: a warning line per channel that lacks something, else one info
    line."""
    lacking = [c for c in checks if c.missing]
    for check in lacking:
        log.warning(
            "guild %s: in #%s (%s, %s) Conductor lacks: %s",
            guild.id,
            check.name,
            ", ".join(check.kinds),
            check.channel_id,
            describe(check),
        )
    if not lacking:
        log.info(
            "guild %s: Conductor has every permission it needs in its %d channel(s)",
            guild.id,
            len(checks),
        )


def refusal(channel: object, member: discord.Member | None) -> str:
    """Why a post in ``channel`` was refused, as far as the permissions tell: ``missing Send
    Messages in Threads``; empty when they do not tell."""
    if member is None or not isinstance(channel, (discord.abc.GuildChannel, discord.Thread)):
        return ""
    send = "send_messages_in_threads" if isinstance(channel, discord.Thread) else "send_messages"
    held = held_in(channel, member)
    lacking = [LABELS[p] for p in ("view_channel", send) if not getattr(held, p)]
    return f"missing {' and '.join(lacking)}" if lacking else ""
