"""/task through simcord: the card, the list, the autocomplete; and the card's embed limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import discord
import pytest
import simcord

from bot.client import ConductorBot
from bot.sample import GUILD_ID
from cogs.task._render import duration, task_embed
from conductor.states import ReviewStatus, TaskState
from conductor.views import (
    Approver,
    DependencyView,
    IncomingMessage,
    NoteView,
    Reactor,
    ReviewView,
    StageView,
    TaskCard,
    TaskView,
)
from tests.helpers import World, refused, reviewed

_message_ids = count(5_000_000)


class Clock:
    """The domain's clock, moved by the test so durations are exact."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    for module in ("conductor.handoffs.apply", "conductor.machines", "conductor.releases.service"):
        monkeypatch.setattr(f"{module}.utcnow", clock)
    return clock


async def handoff(bot: ConductorBot, text: str, *, author: str = "machoke") -> None:
    result = await bot.handoffs.apply(
        IncomingMessage(GUILD_ID, 1, next(_message_ids), 77, author, "bot", text)
    )
    assert result.error is None, result.error


def fields(embed: discord.Embed) -> dict[str, str]:
    return {str(f.name): str(f.value) for f in embed.fields}


def ts(at: datetime, style: str = "f") -> str:
    return f"<t:{int(at.timestamp())}:{style}>"


# ---------------------------------------------------------------- /task show


async def test_show_renders_the_whole_card(world: World, clock: Clock) -> None:
    await reviewed(world.bot, "core")
    started = clock.now
    await handoff(
        world.bot,
        "handoff alpha → building\n"
        "title: Alpha feature\n"
        "branch: feat/alpha\n"
        "kind: feature\n"
        "depends-on: core, ghost\n"
        "model: claude-opus-4-8\n"
        "tokens: 52,276,348\n"
        "cost: $33.96\n"
        "\n"
        "Started on it.",
    )
    clock.advance(hours=2, minutes=5)
    submitted = clock.now
    await handoff(
        world.bot,
        "handoff alpha → submitted\nmodel: claude-sonnet-4\ntokens: 1,000\ncost: $1.50\n\n"
        "Done. 795/0/0 green.",
    )
    card = await world.bot.tasks.card(GUILD_ID, "alpha")
    assert card.review is not None
    await world.bot.reviews.attach_message(card.review.request_id, 2, 777)
    await world.bot.reviews.record_approval(GUILD_ID, 777, Reactor(601, "Rita"))

    result = await world.bob.slash(world.general, "task show", slug="alpha")

    assert not result.ephemeral
    [embed] = result.response.embeds
    assert embed.title == "📨 alpha — Alpha feature"
    shown = fields(embed)
    assert re.fullmatch(r"📨 submitted for \S+( \S+)?", shown["State"]), shown["State"]
    assert shown["Branch"] == "`feat/alpha`"
    assert shown["Kind"] == "feature"
    assert shown["Author"] == "machoke"
    assert shown["Dependencies"] == "👀 `core` — reviewed\n❔ `ghost` — unknown task"
    assert shown["Approvals"] == "1/2 — Rita"
    assert shown["Latest handoff note (of 2)"] == (
        f"by machoke → submitted · {ts(submitted, 'R')}\nDone. 795/0/0 green."
    )
    assert embed.description == (
        "**Timeline**\n"
        "🔨 created → **building** · 0s in created · by machoke · "
        f"claude-opus-4-8, 52,276,348 tokens, $33.96 · {ts(started)}\n"
        "📨 building → **submitted** · 2h 5m in building · by machoke · "
        f"claude-sonnet-4, 1,000 tokens, $1.50 · {ts(submitted)}"
    )
    assert embed.footer.text == "Reported in all: 52,277,348 tokens · $35.46"


async def test_show_of_a_reviewed_task_names_both_approvers(world: World) -> None:
    await reviewed(world.bot, "core")
    embed = (await world.bob.slash(world.general, "task show", slug="CORE ")).response.embeds[0]
    assert embed.title == "👀 core — Core"
    shown = fields(embed)
    assert shown["Approvals"] == "2/2 ✅ approved — r601, r602"
    assert shown["Dependencies"] == "none"
    assert not any(name.startswith("Latest handoff note") for name in shown)  # none was sent
    assert embed.description is not None
    heading, *moves = embed.description.splitlines()
    assert heading == "**Timeline**"
    assert [m.split(" · ")[0] for m in moves] == [
        "📨 created → **submitted**",
        "👀 submitted → **reviewed**",
    ]
    assert moves[-1].split(" · ")[2] == "by r601, r602"  # the approvers made that move
    assert embed.footer.text is None  # no model, tokens or cost reported


async def test_unknown_task_is_refused(world: World) -> None:
    result = await world.bob.slash(world.general, "task show", slug="nope")
    refused(
        world.env,
        result,
        "No task `nope`. Tasks appear with their first handoff; `/task list` shows them.",
    )


async def test_a_long_timeline_keeps_the_newest_moves(world: World) -> None:
    long_model = "m" * 100
    await handoff(world.bot, f"handoff busy → building\ntitle: {'T' * 200}\n\n{'n' * 3000}")
    moves = 1
    for round_ in range(20):
        for target in ("submitted", "building"):
            await handoff(
                world.bot,
                f"handoff busy → {target}\nmodel: {long_model}\ntokens: {round_}\ncost: $1\n\n"
                + "x" * 2000,
            )
            moves += 1
    await handoff(world.bot, "handoff busy → submitted")
    moves += 1

    embed = (await world.bob.slash(world.general, "task show", slug="busy")).response.embeds[0]

    assert len(embed) <= 6000
    assert embed.title is not None and len(embed.title) <= 256
    assert embed.description is not None and len(embed.description) <= 4096
    assert all(len(str(f.value)) <= 1024 for f in embed.fields)
    heading, left_out, *lines = embed.description.splitlines()
    assert heading == "**Timeline**"
    match = re.fullmatch(r"_…(\d+) earlier moves not shown_", left_out)
    assert match, left_out
    assert int(match[1]) + len(lines) == moves
    assert lines[-1].startswith("📨 building → **submitted** · ")
    assert lines[-2].startswith("🔨 submitted → **building** · ")
    assert f"{long_model}, 19 tokens, $1.00" in lines[-2]
    assert fields(embed)["Latest handoff note (of 41)"].endswith("…")


def test_the_card_fits_discord_limits_whatever_it_holds() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    task = TaskView(
        slug="s" * 63,
        title="T" * 400,
        kind="k" * 40,
        branch="b" * 255,
        state=TaskState.SUBMITTED,
        release_slug=None,
        author_name="a" * 100,
        author_id=1,
        dependencies=tuple(DependencyView(f"{i:02d}" + "d" * 61, None) for i in range(40)),
        state_since=at,
    )
    review = ReviewView(
        request_id=1,
        task_slug=task.slug,
        task_title=task.title,
        branch=task.branch,
        author_name="a",
        author_id=1,
        round=3,
        status=ReviewStatus.OPEN,
        required=20,
        approvers=tuple(Approver(i, "r" * 100) for i in range(19)),
        channel_id=None,
        message_id=None,
    )
    stage = StageView(
        from_state=TaskState.BUILDING,
        to_state=TaskState.SUBMITTED,
        trigger="submit",
        actor="a" * 100,
        actor_id=1,
        at=at,
        seconds_in_previous=90061,
        model="m" * 100,
        tokens=10**12,
        cost=Decimal("99999.99"),
    )
    card = TaskCard(
        task=task,
        review=review,
        timeline=(stage,) * 300,
        notes=(NoteView(at, "a" * 100, TaskState.SUBMITTED, "n" * 5000),),
    )

    embed = task_embed(card, now=at + timedelta(hours=3))

    assert len(embed) <= 6000
    assert embed.title is not None and len(embed.title) == 256
    assert embed.description is not None and len(embed.description) <= 4096
    assert len(embed.fields) <= 25
    assert all(len(str(f.value)) <= 1024 for f in embed.fields)
    shown = fields(embed)
    assert shown["State"] == "📨 submitted for 3h"
    assert shown["Dependencies"].endswith("more_")
    assert shown["Approvals"].startswith("19/20 · round 3 — rrr")
    assert "1d 1h in building" in embed.description
    assert "1,000,000,000,000 tokens, $99,999.99" in embed.description
    assert re.search(r"_…\d+ earlier moves not shown_", embed.description)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (45, "45s"),
        (60, "1m"),
        (200, "3m 20s"),
        (3600, "1h"),
        (7500, "2h 5m"),
        (86400, "1d"),
        (90061, "1d 1h"),
        (-5, "0s"),
    ],
)
def test_durations_read_like_people_write_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# ---------------------------------------------------------------- autocomplete


async def test_autocomplete_offers_every_task_by_slug_or_title(world: World) -> None:
    await reviewed(world.bot, "core")
    await handoff(world.bot, "handoff alpha → building\ntitle: Alpha feature")
    await handoff(world.bot, f"handoff wordy → designed\ntitle: {'Long words ' * 18}")

    everything = await world.bob.autocomplete(world.general, "task show", "slug", "")
    assert {c["value"] for c in everything} == {"core", "alpha", "wordy"}
    assert {"name": "alpha — Alpha feature (building)", "value": "alpha"} in everything
    assert all(1 <= len(c["name"]) <= 100 for c in everything)
    [wordy] = [c for c in everything if c["value"] == "wordy"]
    assert len(wordy["name"]) == 100 and wordy["name"].endswith("…")

    assert await world.bob.autocomplete(world.general, "task show", "slug", "ALP") == [
        {"name": "alpha — Alpha feature (building)", "value": "alpha"}
    ]
    by_title = await world.bob.autocomplete(world.general, "task show", "slug", "feature")
    assert [c["value"] for c in by_title] == ["alpha"]
    assert await world.bob.autocomplete(world.general, "task show", "slug", "zzz") == []


async def test_autocomplete_offers_at_most_25(world: World) -> None:
    for i in range(30):
        await handoff(world.bot, f"handoff task-{i:02d} → building")
    choices = await world.bob.autocomplete(world.general, "task show", "slug", "task")
    assert len(choices) == 25


# ---------------------------------------------------------------- /task list


async def test_list_shows_every_task_newest_first(world: World) -> None:
    await reviewed(world.bot, "core")
    await reviewed(world.bot, "ui", depends_on="core")
    await handoff(world.bot, "handoff alpha → building\ntitle: Alpha feature\nbranch: feat/alpha")

    result = await world.bob.slash(world.general, "task list")

    assert not result.ephemeral
    [embed] = result.response.embeds
    assert embed.title == "Tasks (3)"
    assert embed.description == (
        "🔨 `alpha` — Alpha feature · building · `feat/alpha`\n"
        "👀 `ui` — Ui · reviewed · `feat/ui`\n"
        "👀 `core` — Core · reviewed · `feat/core`"
    )


async def test_list_filters_by_state(world: World) -> None:
    await reviewed(world.bot, "core")
    await handoff(world.bot, "handoff alpha → building\ntitle: Alpha feature")

    embed = (await world.bob.slash(world.general, "task list", state="reviewed")).response.embeds[0]
    assert embed.title == "Tasks in `reviewed` (1)"
    assert embed.description == "👀 `core` — Core · reviewed · `feat/core`"

    building = await world.bob.slash(world.general, "task list", state="building")
    assert building.response.embeds[0].description == "🔨 `alpha` — Alpha feature · building"


async def test_list_offers_every_state_as_a_choice(world: World) -> None:
    for state in TaskState:
        result = await world.bob.slash(world.general, "task list", state=state.value)
        assert result.response is not None
    with pytest.raises(simcord.OptionError, match="only allows"):
        await world.bob.slash(world.general, "task list", state="nonsense")


async def test_an_empty_list_says_so(world: World) -> None:
    nothing = await world.bob.slash(world.general, "task list")
    assert nothing.ephemeral
    assert nothing.response.content == (
        "No tasks yet: a task appears with its first handoff in a handoff channel."
    )
    await reviewed(world.bot, "core")
    none_shipped = await world.bob.slash(world.general, "task list", state="shipped")
    assert none_shipped.ephemeral
    assert none_shipped.response.content == (
        "No tasks in `shipped`. `/task list` without a state shows them all."
    )


async def test_a_long_list_is_paged_newest_first_with_an_older_button(world: World) -> None:
    for i in range(45):
        await handoff(world.bot, f"handoff task-{i:02d} → building\ntitle: {'Word ' * 30}")

    listed = await world.bob.slash(world.general, "task list")

    def page() -> tuple[str | None, list[str], list[str]]:
        message = world.env.backend.messages[listed.response.channel_id][listed.response.id]
        [embed] = message.embeds
        labels = [c["label"] for row in message.components for c in row["components"]]
        return embed["title"], embed["description"].splitlines(), labels

    title, lines, labels = page()
    assert title == "Tasks, page 1" and labels == ["Older ▸"]
    assert len(lines) == 20 and lines[0].startswith("🔨 `task-44` — ")  # newest first
    seen = [line.split("`")[1] for line in lines]
    await world.olga.click(listed.response, label="Older ▸")  # anyone may page it
    title, lines, labels = page()
    assert title == "Tasks, page 2" and labels == ["Older ▸"]
    seen += [line.split("`")[1] for line in lines]
    await world.bob.click(listed.response, label="Older ▸")
    title, lines, labels = page()
    assert title == "Tasks, page 3" and labels == []  # the last page: no button
    seen += [line.split("`")[1] for line in lines]
    assert seen == [f"task-{i:02d}" for i in reversed(range(45))]
