"""What ``/conductor config`` (and the answer to ``/conductor setup``) shows: each binding,
where it comes from, a ⚠️ on what is wanted but does not resolve in the guild, and each
permission the bot lacks in a bound channel with what that breaks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import discord

from bot.bindings import Binding, Bindings, find_channel, find_role
from bot.permissions import ChannelCheck
from conductor.text import clip

FIELD_LIMIT = 1024
#: Discord's limit on an embed's text, all fields included
EMBED_LIMIT = 6000

SOURCE = {
    "setup": "set by /conductor setup",
    "config": "from the config file",
    "unset": "not set",
}


@dataclass(frozen=True, slots=True)
class Row:
    key: str  # the key in ``Bindings.wanted``
    label: str
    kind: Literal["channel", "role"]
    #: what happens while it is not set
    unset: str


ROWS: tuple[Row, ...] = (
    Row("handoff channels", "Handoff channels", "channel", "handoffs are not read anywhere"),
    Row("reviews channel", "Reviews channel", "channel", "review requests are not posted"),
    Row("notes channel", "Release notes channel", "channel", "releases get no notes thread"),
    Row("deployments channel", "Deployments channel", "channel", "there is no pinned board"),
    Row("operator role", "Operator role", "role", "operators are members with Manage Server"),
    Row("reviewer role", "Reviewer role", "role", "anyone may review"),
    Row("PM role", "PM role", "role", "no PM bids with /task size"),
    Row("PO role", "PO role", "role", "no PO bids with /task size"),
)


def _items(row: Row, binding: Binding) -> list[str]:
    """What was asked for: several channels for the handoffs (their names hold no commas)."""
    if binding.wanted is None:
        return []
    if row.key == "handoff channels":
        return [part.strip() for part in binding.wanted.split(",") if part.strip()]
    return [binding.wanted]


def _mention(guild: discord.Guild, kind: str, wanted: str) -> str | None:
    find: Callable[[discord.Guild, str], discord.TextChannel | discord.Role | None] = (
        find_channel if kind == "channel" else find_role
    )
    found = find(guild, wanted)
    return found.mention if found is not None else None


def binding_value(guild: discord.Guild, row: Row, binding: Binding) -> tuple[str, bool]:
    """The field's text and whether something wanted does not resolve."""
    items = _items(row, binding)
    if not items:
        return f"not set: {row.unset}", False
    shown: list[str] = []
    broken = False
    for item in items:
        mention = _mention(guild, row.kind, item)
        if mention is None:
            broken = True
            shown.append(f"⚠️ no {row.kind} `{item}` in this server")
        else:
            shown.append(mention)
    source = SOURCE.get(binding.source, binding.source)
    return clip(", ".join(shown), FIELD_LIMIT - len(source) - 3) + f"\n_{source}_", broken


def config_embed(
    guild: discord.Guild,
    bindings: Bindings,
    required_approvals: int,
    *,
    title: str,
    checks: Sequence[ChannelCheck] = (),
) -> discord.Embed:
    embed = discord.Embed(title=title)
    broken: list[str] = []
    for row in ROWS:
        value, is_broken = binding_value(guild, row, bindings.wanted[row.key])
        if is_broken:
            broken.append(row.label.lower())
        embed.add_field(name=("⚠️ " if is_broken else "") + row.label, value=value, inline=False)
    embed.add_field(
        name="Required approvals", value=f"{required_approvals}\n_from the config file_"
    )
    if broken:
        embed.description = (
            f"⚠️ Not found in this server: {', '.join(broken)}. "
            "Bind existing ones with `/conductor setup`."
        )
    else:
        embed.description = "Everything that is set resolves in this server."
    embed.description += "\n" + permission_fields(embed, checks)
    embed.set_footer(text="What /conductor setup stores overrides the config file.")
    return embed


def permission_fields(embed: discord.Embed, checks: Sequence[ChannelCheck]) -> str:
    """A field per bound channel where the bot lacks something, each permission with what it
    breaks; the line for the description."""
    lacking = [c for c in checks if c.missing]
    if not lacking:
        return "✅ Conductor has every permission it needs in its channels."
    left = len(lacking)
    for check in lacking:
        name = f"⚠️ Missing in #{check.name}"
        value = clip("\n".join(f"• **{m.label}**: {m.breaks}" for m in check.missing), FIELD_LIMIT)
        if len(embed) + len(name) + len(value) + 200 > EMBED_LIMIT:
            embed.add_field(
                name="⚠️ And more",
                value=f"{left} more channel(s) lack permissions: fix these, then look again.",
            )
            break
        embed.add_field(name=name, value=value, inline=False)
        left -= 1
    where = ", ".join(c.mention for c in lacking)
    return f"⚠️ Conductor lacks permissions it needs in {where}: each is named below."
