"""The permission table and the pure check, on real ``discord.Permissions``: each channel's
needs, the role ping, a channel bound twice, and what is named missing. (The check against a
guild's overwrites, the fallback on a refused post and the log at start are in
``tests/cogs/test_permissions.py``, through simcord.)"""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from bot.permissions import (
    LABELS,
    NEEDS,
    ChannelKind,
    Missing,
    Need,
    missing,
    needs_of,
    role_ping_need,
)
from bot.publish import _with_reason
from conductor.notes import MESSAGE_LIMIT


def test_every_need_has_a_label_and_names_a_real_permission() -> None:
    for needs in NEEDS.values():
        for need in needs:
            assert need.permission in discord.Permissions.VALID_FLAGS, need
            assert need.label == LABELS[need.permission] and need.breaks
    assert role_ping_need("Ops").permission in discord.Permissions.VALID_FLAGS


def test_the_thread_posts_need_send_messages_in_threads_and_the_board_its_pin() -> None:
    """What the README's old list missed."""
    notes = {n.permission for n in NEEDS["notes"]}
    assert {"send_messages_in_threads", "create_public_threads", "send_messages"} <= notes
    board = {n.permission for n in NEEDS["deployments"]}
    assert {"embed_links", "pin_messages"} <= board and "manage_messages" not in board


def test_the_role_ping_is_needed_only_where_the_notes_are() -> None:
    assert "mention_everyone" not in {n.permission for n in needs_of(["reviews"], role_ping="Ops")}
    notes = needs_of(["notes"], role_ping="Ops")
    [ping] = [n for n in notes if n.permission == "mention_everyone"]
    assert ping.breaks == (
        "the red alert's ping of @Ops notifies nobody: the role is not mentionable"
    )
    assert "mention_everyone" not in {n.permission for n in needs_of(["notes"])}


def test_a_channel_bound_twice_names_each_permission_once_with_both_reasons() -> None:
    needs = needs_of(["reviews", "notes"])
    permissions = [n.permission for n in needs]
    assert len(permissions) == len(set(permissions))
    [history] = [n for n in needs if n.permission == "read_message_history"]
    reviews = next(n for n in NEEDS["reviews"] if n.permission == "read_message_history")
    notes = next(n for n in NEEDS["notes"] if n.permission == "read_message_history")
    assert history.breaks == f"{reviews.breaks}; {notes.breaks}"


def test_each_permission_not_held_is_named_with_what_it_breaks() -> None:
    needs = [
        Need("view_channel", "blind"),
        Need("send_messages", "mute"),
        Need("attach_files", "no pictures"),
    ]
    held = discord.Permissions(view_channel=True, attach_files=True)
    assert missing(needs, held) == (Missing("Send Messages", "mute"),)
    assert missing(needs, discord.Permissions(view_channel=True)) == (
        Missing("Send Messages", "mute"),
        Missing("Attach Files", "no pictures"),
    )
    everything = discord.Permissions(view_channel=True, send_messages=True, attach_files=True)
    assert missing(needs, everything) == ()


def test_without_view_channel_that_alone_is_named() -> None:
    needs = list(NEEDS["handoffs"])
    assert missing(needs, discord.Permissions(send_messages=True)) == (
        Missing("View Channel", "Conductor cannot see this channel: " + needs[0].breaks),
    )


@pytest.mark.parametrize("kind", sorted(NEEDS))
def test_the_table_held_whole_lacks_nothing(kind: ChannelKind) -> None:
    needs = NEEDS[kind]
    held = discord.Permissions(**{n.permission: True for n in needs})
    assert missing(needs, held) == ()


def test_the_reason_for_a_fallback_leads_the_first_message() -> None:
    said = _with_reason(["notes one", "notes two"], ["<#1> (missing Send Messages in Threads)"])
    assert said == [
        "⚠️ Posted here because I may not post in <#1> (missing Send Messages in Threads). "
        "`/conductor config` shows what I lack.\nnotes one",
        "notes two",
    ]
    assert _with_reason(["notes"], []) == ["notes"]


def test_a_reason_that_does_not_fit_goes_alone_before_a_full_message() -> None:
    full = "x" * MESSAGE_LIMIT
    said = _with_reason([full], ["<#1> (missing Send Messages in Threads)", "<#2> (a)"])
    assert said[1:] == [full]
    assert said[0].startswith("⚠️ Posted here because I may not post in <#1> (missing Send ")
    assert ", nor in <#2> (a)." in said[0]


README_ROWS: dict[str, ChannelKind] = {
    "handoff channels": "handoffs",
    "reviews": "reviews",
    "release notes": "notes",
    "deployments": "deployments",
}


def test_the_readme_lists_exactly_what_each_channel_needs() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    listed: dict[ChannelKind, list[str]] = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] in README_ROWS:
            listed[README_ROWS[cells[0]]] = [p.strip() for p in cells[1].split(",")]
    assert listed == {kind: [n.label for n in needs] for kind, needs in NEEDS.items()}
    assert LABELS["mention_everyone"] in readme  # the role ping's condition
