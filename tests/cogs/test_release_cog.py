"""/release through simcord: every command's happy path and its refusals."""

from __future__ import annotations

import logging

import pytest
import simcord

from bot.sample import GUILD_ID
from conductor.states import ReleaseState, TaskState
from conductor.views import IncomingMessage
from tests.helpers import World, refused, reviewed


async def _active(world: World) -> str:
    status = await world.bot.releases.status(GUILD_ID)
    assert status.active is not None
    return status.active.slug


async def test_open_creates_the_release_and_its_thread(world: World) -> None:
    result = await world.olga.slash(world.general, "release open", name="Deploy foundation")
    assert not result.ephemeral
    slug = await _active(world)
    assert slug.endswith("-deploy-foundation")
    assert f"Opened `{slug}`" in result.response.content
    [thread] = world.notes.threads
    assert thread.name == slug
    assert (await world.bot.releases.get(GUILD_ID, slug)).notes_thread_id == thread.id


async def test_second_open_is_refused_naming_the_active_release(world: World) -> None:
    await world.olga.slash(world.general, "release open", name="first")
    slug = await _active(world)
    result = await world.olga.slash(world.general, "release open", name="second")
    refused(world.env, result, f"Release `{slug}` is already active (assembling), opened by olga")
    assert await _active(world) == slug


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("release open", {"name": "x"}),
        ("release add", {"task": "x"}),
        ("release remove", {"task": "x"}),
        ("release assemble", {}),
        ("release ship", {}),
        ("release abandon", {"reason": "x"}),
    ],
)
async def test_operator_commands_need_the_role(
    world: World, command: str, options: dict[str, str]
) -> None:
    result = await world.bob.slash(world.general, command, **options)
    refused(world.env, result, "Only operators can do this: it needs the `Operators` role.")
    assert (await world.bot.releases.status(GUILD_ID)).active is None


async def test_status_is_for_anyone(world: World) -> None:
    result = await world.bob.slash(world.general, "release status")
    assert result.response.embeds[0].title == "No active release"
    await reviewed(world.bot, "core")
    await world.olga.slash(world.general, "release open", name="train")
    await world.olga.slash(world.general, "release add", task="core")
    embed = (await world.bob.slash(world.general, "release status")).response.embeds[0]
    assert embed.title.startswith("🧩 `") and "assembling" in embed.title
    assert "`core` — Core" in embed.description


async def test_add_happy_path_and_refusals(world: World) -> None:
    await reviewed(world.bot, "core")
    await reviewed(world.bot, "ui", depends_on="core, ghost")
    await world.bot.handoffs.apply(
        IncomingMessage(GUILD_ID, 1, 5, 77, "machoke", "bot", "handoff wip → building")
    )
    result = await world.olga.slash(world.general, "release add", task="core")
    refused(world.env, result, "No release is active")
    await world.olga.slash(world.general, "release open", name="train")
    ok = await world.olga.slash(world.general, "release add", task="core")
    assert "`core` joins" in ok.response.content and not ok.ephemeral
    refused(
        world.env,
        await world.olga.slash(world.general, "release add", task="nope"),
        "No task `nope`",
    )
    refused(
        world.env,
        await world.olga.slash(world.general, "release add", task="wip"),
        "Task `wip` is building; only reviewed tasks can join a release.",
    )
    refused(
        world.env,
        await world.olga.slash(world.general, "release add", task="ui"),
        "it depends on `ghost` (unknown task)",
    )
    card = await world.bot.tasks.card(GUILD_ID, "ui")
    assert card.task.state is TaskState.REVIEWED


async def test_autocomplete_offers_reviewed_tasks_and_members(world: World) -> None:
    for slug in ("alpha", "beta", "gamma"):
        await reviewed(world.bot, slug)
    await world.olga.slash(world.general, "release open", name="train")
    await world.olga.slash(world.general, "release add", task="beta")
    choices = await world.olga.autocomplete(world.general, "release add", "task", "")
    # Reviewed tasks not aboard yet, most recently changed first.
    assert [c["value"] for c in choices] == ["gamma", "alpha"]
    narrowed = await world.olga.autocomplete(world.general, "release add", "task", "gam")
    assert [c["value"] for c in narrowed] == ["gamma"]
    members = await world.olga.autocomplete(world.general, "release remove", "task", "")
    assert [c["value"] for c in members] == ["beta"]


async def test_remove_assemble_and_ship(world: World) -> None:
    await reviewed(world.bot, "core")
    await reviewed(world.bot, "ui", depends_on="core")
    await world.olga.slash(world.general, "release open", name="train")
    refused(
        world.env, await world.olga.slash(world.general, "release assemble"), "has no members yet"
    )
    await world.olga.slash(world.general, "release add", task="core")
    await world.olga.slash(world.general, "release add", task="ui")
    refused(
        world.env,
        await world.olga.slash(world.general, "release remove", task="core"),
        "`ui` depends on it",
    )
    removed = await world.olga.slash(world.general, "release remove", task="ui")
    assert "left" in removed.response.content
    await world.olga.slash(world.general, "release add", task="ui")
    refused(
        world.env,
        await world.olga.slash(world.general, "release ship"),
        "is assembling; it can't move to shipped",
    )
    assembled = await world.olga.slash(world.general, "release assemble")
    assert "is assembled. Merge order:\n• `core`" in assembled.response.content
    shipped = await world.olga.slash(world.general, "release ship")
    # Deferred at once, then one progress message edited through the steps.
    assert shipped.followups == []
    assert (
        shipped.response.content.startswith("🚀 `")
        and "` v1 — shipped 🟢\n" in shipped.response.content
    )
    assert not shipped.ephemeral
    assert "2 members shipped" in shipped.response.content
    status = await world.bot.releases.status(GUILD_ID)
    assert status.active is None and status.last_shipped is not None
    assert status.last_shipped.state is ReleaseState.SHIPPED


async def test_abandon_confirm_cancel_others_and_expiry(world: World) -> None:
    await reviewed(world.bot, "core")
    await world.olga.slash(world.general, "release open", name="train")
    await world.olga.slash(world.general, "release add", task="core")
    slug = await _active(world)

    # Cancel: nothing changes.
    asked = await world.olga.slash(world.general, "release abandon", reason="oops")
    assert not asked.ephemeral and f"asks to abandon `{slug}`" in asked.response.content
    await world.olga.click(asked.response, label="Keep it")
    assert await _active(world) == slug

    # Someone else's click is refused; the operator's confirm abandons.
    asked = await world.olga.slash(world.general, "release abandon", reason="wrong members")
    other = await world.bob.click(asked.response, label="Abandon")
    assert other.ephemeral and "Only the operator who asked" in other.response.content
    assert await _active(world) == slug
    await world.olga.click(asked.response, label="Abandon")
    assert (await world.bot.releases.status(GUILD_ID)).active is None
    released = await world.bot.releases.get(GUILD_ID, slug)
    assert (released.state, released.abandon_reason) == (ReleaseState.ABANDONED, "wrong members")
    assert (await world.bot.tasks.card(GUILD_ID, "core")).task.state is TaskState.REVIEWED


async def test_abandon_confirmation_expires(world: World) -> None:
    await world.olga.slash(world.general, "release open", name="train")
    slug = await _active(world)
    asked = await world.olga.slash(world.general, "release abandon", reason="later")
    await world.env.advance_time(61)
    with pytest.raises(simcord.SetupError):
        await world.olga.click(asked.response, label="Abandon")
    assert await _active(world) == slug


async def test_a_bug_answers_with_a_ref_and_logs_the_traceback(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(guild_id: int) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(world.bot.releases, "status", broken)
    with caplog.at_level(logging.ERROR, logger="bot.tree"):
        result = await world.bob.slash(world.general, "release status")
    assert result.ephemeral
    text = result.response.content
    assert text.startswith("Something went wrong (ref ") and "database on fire" not in text
    ref = text.split("(ref ")[1].split(")")[0]
    [record] = [r for r in caplog.records if ref in r.getMessage()]
    assert record.exc_info is not None and "database on fire" in str(record.exc_info[1])
    simcord.assert_error(world.env, RuntimeError, contains="database on fire")


async def test_a_failed_thread_never_undoes_the_open(world: World) -> None:
    world.env.inject_error("POST", "/channels/*/threads", status=500)
    result = await world.olga.slash(world.general, "release open", name="train")
    assert "notes thread could not be created" in result.response.content
    assert await _active(world)  # the release is open all the same
    assert world.notes.threads == []


async def test_a_demoted_operator_cannot_confirm_an_abandon_asked_before(world: World) -> None:
    await world.olga.slash(world.general, "release open", name="train")
    slug = await _active(world)
    asked = await world.olga.slash(world.general, "release abandon", reason="wrong members")
    world.env.backend.remove_member_role(GUILD_ID, world.olga.id, world.operators.id)
    await world.env.settle()
    pressed = await world.olga.click(asked.response, label="Abandon")
    assert pressed.ephemeral
    assert pressed.response.content == "Only operators can do this: it needs the `Operators` role."
    assert await _active(world) == slug  # nothing abandoned
