"""``/task show`` and ``/task list`` as embeds, kept inside Discord's embed limits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

import discord
from discord import app_commands
from discord.utils import escape_markdown

from bot.autocomplete import choices
from conductor.sizing import ROLE_LABEL, sealed_line
from conductor.states import ReviewStatus, TaskState
from conductor.text import TASK_ICON, clip
from conductor.views import (
    ConversationEntry,
    ConversationPage,
    DependencyView,
    NoteView,
    ReviewView,
    SizingView,
    StageView,
    TaskCard,
    TaskPage,
    TaskView,
)

# Discord's embed limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_LIMIT = 1024
TOTAL_LIMIT = 6000

#: a single timeline or list line never takes more than this (long names and models)
LINE_LIMIT = 400
TIMELINE_HEADING = "**Timeline**"
#: an entry's text on the card, and on an earlier page of the conversation
ENTRY_TEXT, PAGE_ENTRY_TEXT = 140, 300
#: a ❌'s reason on its move in the timeline
REASON_TEXT = 160
EARLIER = "◂ Earlier conversation"
ENTRY_ICON = {"note": "📝", "reply": "💬", "reason": "↩️", "rebid": "🎯"}

REVIEW_STATUS = {
    ReviewStatus.OPEN: "",
    ReviewStatus.APPROVED: " ✅ approved",
    ReviewStatus.CHANGES_REQUESTED: " ❌ changes requested",
    ReviewStatus.SUPERSEDED: " (superseded: the task went back to building)",
}


# ---------------------------------------------------------------- small pieces


#: (seconds in the big unit, its name, seconds in the next unit, its name)
_UNITS = ((86400, "d", 3600, "h"), (3600, "h", 60, "m"), (60, "m", 1, "s"))


def duration(seconds: float) -> str:
    """A short human duration in its two largest units: ``45s``, ``3m 20s``, ``2h 5m``, ``1d 4h``."""
    total = max(0, int(seconds))
    for size, big_unit, small_size, small_unit in _UNITS:
        if total >= size:
            big, rest = divmod(total, size)
            small = rest // small_size
            return f"{big}{big_unit} {small}{small_unit}" if small else f"{big}{big_unit}"
    return f"{total}s"


def timestamp(at: datetime, style: str = "f") -> str:
    """A Discord timestamp: every reader sees it in their own time zone."""
    return f"<t:{int(at.timestamp())}:{style}>"


def keep_newest(lines: Sequence[str], limit: int, noun: str = "earlier moves") -> str:
    """The last lines that fit in ``limit`` characters, oldest first, after a line saying how
    many older ones were left out."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        extra = len(line) + (1 if kept else 0)
        left_out = len(lines) - len(kept) - 1
        note = len(_left_out(left_out, noun)) + 1 if left_out else 0
        if size + extra + note > limit:
            break
        kept.append(line)
        size += extra
    left_out = len(lines) - len(kept)
    body = "\n".join(reversed(kept))
    if left_out:
        body = _left_out(left_out, noun) + ("\n" + body if body else "")
    return body


def _left_out(count: int, noun: str) -> str:
    return f"_…{count} {noun} not shown_"


def keep_first(lines: Sequence[str], limit: int, more: str = "more") -> str:
    """The first lines that fit in ``limit`` characters, then a line saying how many more."""
    kept: list[str] = []
    size = 0
    for line in lines:
        extra = len(line) + (1 if kept else 0)
        after = len(lines) - len(kept) - 1
        note = len(_and_more(after, more)) + 1 if after else 0
        if size + extra + note > limit:
            break
        kept.append(line)
        size += extra
    rest = len(lines) - len(kept)
    if rest:
        kept.append(_and_more(rest, more))
    return "\n".join(kept)


def _and_more(count: int, more: str) -> str:
    return f"_…and {count} {more}_"


def _text(value: str) -> str:
    """Free text from handoffs (titles, names) shown as written, not as markdown."""
    return escape_markdown(value)


# ---------------------------------------------------------------- /task show


def stage_line(stage: StageView) -> str:
    """``📨 building → **submitted** · 2h 5m in building · by machoke · opus, 1,200 tokens, $3.10 · <t:…>``"""
    parts = [f"{TASK_ICON[stage.to_state]} {stage.from_state.value} → **{stage.to_state.value}**"]
    if stage.seconds_in_previous is not None:
        parts.append(f"{duration(stage.seconds_in_previous)} in {stage.from_state.value}")
    if stage.reason is not None:
        said = _text(clip(" ".join(stage.reason.split()), REASON_TEXT))
        parts.append(f"sent back to {stage.to_state.value} by {_text(stage.actor)}: {said}")
    else:
        parts.append(f"by {_text(stage.actor)}")
    reported = [_text(stage.model)] if stage.model else []
    if stage.tokens is not None:
        reported.append(f"{stage.tokens:,} tokens")
    if stage.cost is not None:
        reported.append(f"${stage.cost:,.2f}")
    if reported:
        parts.append(", ".join(reported))
    parts.append(timestamp(stage.at))
    return clip(" · ".join(parts), LINE_LIMIT)


def dependency_line(dep: DependencyView) -> str:
    if dep.state is None:
        return f"❔ `{dep.slug}` — unknown task"
    line = f"{TASK_ICON[dep.state]} `{dep.slug}` — {dep.state.value}"
    if dep.release_slug:
        line += f" in `{dep.release_slug}`"
    return line


def approvals_text(review: ReviewView | None) -> str:
    if review is None:
        return "No review yet: one opens when the task is submitted."
    text = f"{review.count}/{review.required}{REVIEW_STATUS[review.status]}"
    if review.round > 1:
        text += f" · round {review.round}"
    names = ", ".join(_text(a.name) for a in review.approvers)
    text += f" — {names}" if names else " — no approvals yet"
    return clip(text, FIELD_LIMIT)


def note_field(note: NoteView, count: int) -> tuple[str, str]:
    name = "Latest handoff note" if count == 1 else f"Latest handoff note (of {count})"
    head = f"by {_text(note.author_name)}"
    if note.to_state is not None:
        head += f" → {note.to_state.value}"
    head += f" · {timestamp(note.at, 'R')}"
    return name, head + "\n" + clip(note.note.strip(), FIELD_LIMIT - len(head) - 1)


def entry_line(entry: ConversationEntry, text_limit: int = ENTRY_TEXT) -> str:
    """``💬 **carol** · <t:…:R> · the text, on one line and clipped``"""
    who = f"{ENTRY_ICON[entry.kind]} **{_text(entry.author_name)}**"
    if entry.to_state is not None:
        who += f" → {entry.to_state.value}"
    said = _text(clip(" ".join(entry.text.split()), text_limit)) or "_(nothing written)_"
    return clip(f"{who} · {timestamp(entry.at, 'R')} · {said}", LINE_LIMIT)


def newest_that_fit(page: ConversationPage, limit: int, text_limit: int) -> tuple[str, int]:
    """The newest entries of ``page`` that fit in ``limit`` characters, oldest first (the
    newest at the bottom), after a line pointing at the earlier ones when some are left out;
    and how many entries it shows."""
    lines = [entry_line(e, text_limit) for e in page.entries]
    hint = f"_…earlier entries: {EARLIER}_"
    kept: list[str] = []
    size = len(hint) + 1
    for line in reversed(lines):
        if size + len(line) + 1 > limit and kept:
            break
        kept.append(line)
        size += len(line) + 1
    shown = len(kept)
    if page.before(shown) is not None:
        kept.append(hint)
    return "\n".join(reversed(kept)), shown


def card_conversation(card: TaskCard) -> tuple[str, int]:
    """The card's Conversation field and how many entries it shows."""
    return newest_that_fit(card.conversation, FIELD_LIMIT, ENTRY_TEXT)


def conversation_embed(
    slug: str, page: ConversationPage, *, number: int
) -> tuple[discord.Embed, int]:
    """An earlier page of a task's conversation (``number`` 2 is the one before the card's),
    oldest first; returns the embed and how many entries it shows."""
    text, shown = newest_that_fit(page, DESCRIPTION_LIMIT, PAGE_ENTRY_TEXT)
    embed = discord.Embed(
        title=clip(f"💬 {slug} — conversation, page {number}", TITLE_LIMIT),
        description=text or "_nothing earlier_",
    )
    embed.set_footer(text="Oldest first, the newest at the bottom · /task show for the card")
    return embed, shown


def sizing_text(sizing: SizingView) -> str:
    """The sealed-bid block: before the ship, who has bid and never what; after it, each
    role's size, the actual and whether the forecast held, and what the actual was measured on."""
    text = sealed_line(sizing)
    if sizing.bids:
        text += "\n" + ", ".join(f"{_text(b.bidder)} ({ROLE_LABEL[b.role]})" for b in sizing.bids)
    if sizing.basis is not None:
        text += f"\n_actual measured on {sizing.basis.value}_"
    return clip(text, FIELD_LIMIT)


def _totals(timeline: Iterable[StageView]) -> str | None:
    tokens = [s.tokens for s in timeline if s.tokens is not None]
    costs = [s.cost for s in timeline if s.cost is not None]
    if not tokens and not costs:
        return None
    parts = []
    if tokens:
        parts.append(f"{sum(tokens):,} tokens")
    if costs:
        parts.append(f"${sum(costs, Decimal(0)):,.2f}")
    return "Reported in all: " + " · ".join(parts)


def task_embed(card: TaskCard, *, now: datetime) -> discord.Embed:
    """The task card. The timeline takes what room the other parts leave, newest kept."""
    task = card.task
    icon = TASK_ICON[task.state]
    embed = discord.Embed(title=clip(f"{icon} {task.slug} — {task.title}", TITLE_LIMIT))
    state = f"{icon} {task.state.value}"
    if task.state_since is not None:
        state += f" for {duration((now - task.state_since).total_seconds())}"
    if task.release_slug:
        state += f" in `{task.release_slug}`"
    embed.add_field(name="State", value=state)
    embed.add_field(name="Branch", value=f"`{task.branch}`" if task.branch else "—")
    embed.add_field(name="Kind", value=_text(task.kind) or "—")
    embed.add_field(name="Author", value=_text(task.author_name) or "—")
    deps = [dependency_line(d) for d in task.dependencies]
    embed.add_field(
        name="Dependencies", value=keep_first(deps, FIELD_LIMIT) or "none", inline=False
    )
    embed.add_field(name="Approvals", value=approvals_text(card.review), inline=False)
    if task.sizing is not None:
        embed.add_field(name="Sizing", value=sizing_text(task.sizing), inline=False)
    if card.latest_note is not None:
        name, value = note_field(card.latest_note, len(card.notes))
        embed.add_field(name=name, value=value, inline=False)
    if card.conversation.entries:
        talk, _ = card_conversation(card)
        embed.add_field(name="Conversation", value=talk, inline=False)
    totals = _totals(card.timeline)
    if totals:
        embed.set_footer(text=totals)
    room = min(DESCRIPTION_LIMIT, TOTAL_LIMIT - len(embed)) - len(TIMELINE_HEADING) - 1
    lines = [stage_line(s) for s in card.timeline]
    timeline = keep_newest(lines, room) if lines else "_no moves yet_"
    embed.description = f"{TIMELINE_HEADING}\n{timeline}"
    return embed


# ---------------------------------------------------------------- /task list


def task_line(task: TaskView) -> str:
    line = f"{TASK_ICON[task.state]} `{task.slug}` — {_text(clip(task.title, 80))} · {task.state.value}"
    if task.branch:
        line += f" · `{clip(task.branch, 60)}`"
    return line


def task_list_embed(
    page: TaskPage, state: TaskState | None, *, number: int = 1
) -> tuple[discord.Embed, int]:
    """One page, newest first, as many of its tasks as one embed holds; returns the embed
    and how many tasks it shows (the next page starts after the last shown)."""
    where = f" in `{state.value}`" if state else ""
    lines = [task_line(t) for t in page.tasks]
    shown = lines_that_fit(lines, DESCRIPTION_LIMIT)
    alone = number == 1 and shown == len(lines) and not page.more
    embed = discord.Embed(
        title=f"Tasks{where} ({len(lines)})" if alone else f"Tasks{where}, page {number}",
        description="\n".join(lines[:shown]),
    )
    more = " · Older ▸ for the next page" if page.after(shown) is not None else ""
    embed.set_footer(text=f"Newest first{more} · /task show slug for a task's card")
    return embed, shown


def lines_that_fit(lines: Sequence[str], limit: int) -> int:
    """How many of the first lines fit in ``limit`` characters (at least one)."""
    size = 0
    for count, line in enumerate(lines):
        size += len(line) + (1 if count else 0)
        if size > limit:
            return max(1, count)
    return len(lines)


def no_tasks_text(state: TaskState | None) -> str:
    if state is None:
        return "No tasks yet: a task appears with its first handoff in a handoff channel."
    return f"No tasks in `{state.value}`. `/task list` without a state shows them all."


# ---------------------------------------------------------------- autocomplete


def task_choices(tasks: Iterable[TaskView], current: str) -> list[app_commands.Choice[str]]:
    """Up to 25 tasks whose slug or title contains what was typed so far."""
    return choices(
        (
            (
                task.slug,
                f"{task.slug} — {task.title} ({task.state.value})",
                f"{task.slug}\n{task.title}",
            )
            for task in tasks
        ),
        current,
    )
