"""The rollback through simcord, with git (a bare origin and a clone), a real deploy command and
a health URL: the red alert's Roll back button (a non-operator's press refused; an operator's
asks why, then for a confirmation naming the release, production now and after, and the exact
commands; only the asker may confirm), ``/release rollback`` with its autocomplete, the one
progress message, a second rollback refused, a failing deploy shown, the confirmation's expiry
and cancel, and the button still working after the bot restarted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord

from bot.client import ConductorBot, create_bot
from bot.sample import GUILD_ID
from bot.web.model import GuildRef, board_data
from conductor.releases.git import REVERT_TRAILER
from conductor.states import ReleaseState, RunKind, TaskState
from conductor.text import production_line
from conductor.views import Actor
from tests.helpers import (
    DEPLOY_KEYS,
    FakeRunner,
    Origin,
    World,
    deploy_command,
    deploys,
    git,
    make_bot,
    open_run,
    outbox,
    refused,
    release_by_commands,
)

SEEN = (*DEPLOY_KEYS, "CONDUCTOR_ROLLBACK_OF")
RED = {"/signin": "selector form input[type=password] not found"}


@pytest.fixture
def seen(tmp_path: Path) -> Path:
    return outbox(tmp_path) / "deploys.jsonl"


@pytest.fixture
def deploy_then() -> str:
    return "true"


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """While this file exists, :data:`BROKEN_WHILE_MARKED` fails a rollback's deploy."""
    return outbox(tmp_path) / "rollback-deploy-broken"


#: a ``deploy_then`` failing a rollback's deploy while the ``broken`` file exists
BROKEN_WHILE_MARKED = (
    'if [ -n "$CONDUCTOR_ROLLBACK_OF" ] && [ -e @broken@ ]; then echo "no route" >&2; exit 7; fi'
)


@pytest.fixture
async def simcord_bot(
    tmp_path: Path, clone: Path, seen: Path, deploy_then: str, broken: Path
) -> AsyncIterator[ConductorBot]:
    deploy = deploy_command(seen, deploy_then.replace("@broken@", str(broken)), keys=SEEN)
    async with make_bot(tmp_path, clone=clone, deploy=deploy) as bot:
        yield bot


async def ship(world: World, origin: Origin, name: str, task: str) -> str:
    """Release ``name`` with the member ``task``, shipped through the commands; its slug."""
    return await release_by_commands(world, origin, name=name, tasks=(task,), until="shipped")


def thread_of(world: World, slug: str) -> Any:
    [thread] = [t for t in world.notes.threads if t.name == slug]
    return thread


def alert_in(world: World, slug: str) -> discord.Message:
    alerts: list[discord.Message] = [
        m for m in thread_of(world, slug).history() if m.content.startswith("🚨")
    ]
    [alert] = alerts
    return alert


def buttons(message: Any) -> list[str | None]:
    """The labels of a message's buttons: a ``discord.Message``'s components, or simcord's
    raw rows of a response."""
    out: list[str | None] = []
    for row in message.components:
        if isinstance(row, dict):
            out += [child.get("label") for child in row.get("components", [])]
        else:
            out += [getattr(child, "label", None) for child in row.children]
    return out


async def test_the_alerts_roll_back_button_asks_confirms_and_rolls_back(
    world: World, origin: Origin, seen: Path
) -> None:
    first = await ship(world, origin, "first", "core")
    world.runner.then(RED)
    second = await ship(world, origin, "second", "ui")
    v2 = await world.bot.releases.get(GUILD_ID, second)
    assert v2.merge_sha is not None
    alert = alert_in(world, second)
    assert buttons(alert) == ["Roll back"]

    # Someone without the role: refused at the press, nothing asked, nothing changed.
    pressed = await world.bob.click(alert, label="Roll back")
    assert pressed.ephemeral and pressed.modal is None
    assert pressed.response is not None
    assert pressed.response.content == "Only operators can do this: it needs the `Operators` role."

    # The operator: asked why, then to confirm, publicly, with everything named.
    shown = await world.olga.click(alert, label="Roll back")
    assert shown.modal is not None and shown.modal["title"] == f"Roll back {second}?"[:45]
    asked = await world.olga.submit_modal(shown, {"reason": "checkout is broken"})
    assert asked.response is not None and not asked.ephemeral
    text = asked.response.content
    assert f"asks to roll back `{second}` v2." in text
    assert f"Production now: `{second}` v2, merge `{v2.merge_sha[:10]}`, shipped by olga" in text
    assert f"Production after: `{first}` v1, merge `" in text
    assert "Why: checkout is broken" in text
    assert f"git revert -m 1 {v2.merge_sha}" in text
    assert "git push origin HEAD:refs/heads/main" in text
    assert f"CONDUCTOR_RELEASE={first} CONDUCTOR_VERSION=v1" in text
    assert f"`{second}` becomes rolled_back; its members go back to reviewed: `ui`" in text
    assert buttons(asked.response) == ["Roll back", "Cancel"]

    # Only the asker confirms.
    other = await world.bob.click(asked.response, label="Roll back")
    assert other.ephemeral and other.response is not None
    assert other.response.content == "Only the operator who asked to roll back can confirm it."
    assert (await world.bot.releases.get(GUILD_ID, second)).state is ReleaseState.SHIPPED

    await world.olga.click(asked.response, label="Roll back")

    # The confirmation became the progress, then the outcome.
    lines = asked.response.content.splitlines()
    assert lines[0] == f"⏪ `{second}` v2 — rolled_back 🔴 · Production is `{first}` v1 again"
    [revert] = git(origin.bare, "log", "--format=%H", f"--grep={REVERT_TRAILER}", "main").split()
    assert lines[1].startswith(f"✅ revert: `main` reverted by `{revert[:10]}` and pushed to")
    assert lines[2].startswith(f"✅ deploy: deployed `{first}` v1 again · ")
    assert lines[3].startswith("✅ health gate: healthy after 1 check")
    assert lines[4].startswith("✅ state flip: rolled back; 1 member back to reviewed")
    assert lines[5].startswith("🟢 Smoke seal: green — 6/6 checks passed")
    assert lines[6].startswith("📝 notes: https://discord.com/channels/")
    assert asked.response.components == []
    assert git(origin.bare, "rev-parse", "main") == revert
    assert deploys(seen)[-1] == {
        "CONDUCTOR_RELEASE": first,
        "CONDUCTOR_VERSION": "v1",
        "CONDUCTOR_SHA": revert,
        "CONDUCTOR_ROLLBACK_OF": second,
    }
    release = await world.bot.releases.get(GUILD_ID, second)
    assert release.state is ReleaseState.ROLLED_BACK
    assert (release.rolled_back_by, release.rollback_reason) == ("olga", "checkout is broken")
    card = await world.bot.tasks.card(GUILD_ID, "ui")
    assert card.task.state is TaskState.REVIEWED and card.timeline[-1].trigger == "roll_back"
    [outcome] = [
        m.content for m in thread_of(world, second).history() if "Rolled back" in m.content
    ]
    assert f"Production is `{first}` v1 again." in outcome
    shown_card = await world.bob.slash(world.general, "task show", slug="ui")
    assert "reviewed" in str(shown_card.response.embeds[0].to_dict()).lower()

    # A second press, after the rollback: refused, saying when and by whom.
    again = await world.olga.click(alert_in(world, second), label="Roll back")
    assert again.ephemeral and again.modal is None and again.response is not None
    assert again.response.content.startswith(
        f"Release `{second}` v2 was rolled back already, by olga at "
    )
    assert f"production runs `{first}` v1 now." in again.response.content


async def test_release_rollback_with_autocomplete_and_a_second_rollback_refused(
    world: World, origin: Origin, seen: Path
) -> None:
    first = await ship(world, origin, "first", "core")
    second = await ship(world, origin, "second", "ui")
    offered = await world.olga.autocomplete(world.general, "release rollback", "release", "")
    assert [c["value"] for c in offered] == [second, first]
    assert offered[0]["name"] == f"{second} v2"

    asked = await world.olga.slash(world.general, "release rollback", reason="slow checkout")
    assert asked.response is not None and not asked.ephemeral
    assert "Why: slow checkout" in asked.response.content
    await world.olga.click(asked.response, label="Roll back")

    release = await world.bot.releases.get(GUILD_ID, second)
    assert (release.state, release.rollback_reason) == (ReleaseState.ROLLED_BACK, "slow checkout")
    assert deploys(seen)[-1]["CONDUCTOR_VERSION"] == "v1"

    again = await world.olga.slash(world.general, "release rollback", release=second)
    refused(world.env, again, f"Release `{second}` v2 was rolled back already, by olga")
    older = await world.olga.autocomplete(world.general, "release rollback", "release", "")
    assert [c["value"] for c in older] == [first]  # only shipped releases are offered

    # The default reason when none is given.
    asked = await world.olga.slash(world.general, "release rollback")
    assert asked.response is not None
    assert f"asks to roll back `{first}` v1." in asked.response.content
    assert (
        "Production after: what ran before it (no release shipped before it)"
        in asked.response.content
    )
    await world.olga.click(asked.response, label="Roll back")
    rolled = await world.bot.releases.get(GUILD_ID, first)
    assert rolled.rollback_reason == "rolled back with /release rollback"


async def test_a_non_operator_cannot_ask_and_the_refusals_say_why(
    world: World, origin: Origin
) -> None:
    result = await world.bob.slash(world.general, "release rollback")
    refused(world.env, result, "Only operators can do this: it needs the `Operators` role.")
    result = await world.olga.slash(world.general, "release rollback")
    refused(world.env, result, "Nothing has shipped yet, so there is nothing to roll back.")
    first = await ship(world, origin, "first", "core")
    await ship(world, origin, "second", "ui")
    result = await world.olga.slash(world.general, "release rollback", release=first)
    refused(world.env, result, f"Release `{first}` v1 is not what production runs")


async def test_cancel_expiry_and_a_demoted_operator_roll_nothing_back(
    world: World, origin: Origin
) -> None:
    slug = await ship(world, origin, "first", "core")

    asked = await world.olga.slash(world.general, "release rollback")
    await world.olga.click(asked.response, label="Cancel")
    assert asked.response is not None
    assert asked.response.content == f"Not rolled back: `{slug}` stays."

    asked = await world.olga.slash(world.general, "release rollback")
    await world.env.advance_time(61)
    assert asked.response is not None
    assert (
        asked.response.content == f"⌛ Not rolled back: the confirmation expired. `{slug}` stays."
    )
    with pytest.raises(simcord.SetupError):
        await world.olga.click(asked.response, label="Roll back")

    asked = await world.olga.slash(world.general, "release rollback")
    world.env.backend.remove_member_role(GUILD_ID, world.olga.id, world.operators.id)
    await world.env.settle()
    pressed = await world.olga.click(asked.response, label="Roll back")
    assert pressed.ephemeral and pressed.response is not None
    assert pressed.response.content == "Only operators can do this: it needs the `Operators` role."
    world.env.backend.add_member_role(GUILD_ID, world.olga.id, world.operators.id)
    await world.env.advance_time(61)

    assert (await world.bot.releases.get(GUILD_ID, slug)).state is ReleaseState.SHIPPED
    assert git(origin.bare, "log", "--format=%H", f"--grep={REVERT_TRAILER}", "main") == ""


@pytest.mark.parametrize(
    "deploy_then", ['if [ -n "$CONDUCTOR_ROLLBACK_OF" ]; then echo "no route" >&2; exit 7; fi']
)
async def test_a_failing_rollback_deploy_is_shown_and_told_in_the_thread(
    world: World, origin: Origin
) -> None:
    await ship(world, origin, "first", "core")
    second = await ship(world, origin, "second", "ui")

    asked = await world.olga.slash(world.general, "release rollback", reason="bad")
    await world.olga.click(asked.response, label="Roll back")

    assert asked.response is not None
    text = asked.response.content
    assert text.splitlines()[0].startswith(f"⏪ Rolling back `{second}` v2 · ")
    assert "✅ revert: `main` reverted by `" in text
    assert "❌ deploy: the deploy command failed (exit 7)" in text
    assert "▫️ state flip" in text
    assert (await world.bot.releases.get(GUILD_ID, second)).state is ReleaseState.SHIPPED
    [told] = [
        m.content
        for m in thread_of(world, second).history()
        if m.content.startswith(f"❌ The rollback of `{second}`")
    ]
    assert "no route" in told and "Not done: the deploy, the health gate" in told
    [ping] = [m for m in thread_of(world, second).history() if m.content.startswith("🚨")]
    assert f"<@{world.olga.id}>" in ping.content


async def test_a_rollback_over_a_hotfix_names_it_and_never_says_v1_again(
    world: World, origin: Origin, seen: Path
) -> None:
    """Someone pushed a hotfix onto main after v2 shipped: the confirmation, the progress and
    the notes say production runs main with v2 reverted, the hotfix kept, by commit."""
    first = await ship(world, origin, "first", "core")
    second = await ship(world, origin, "second", "ui")
    hotfix = origin.hotfix({"fix.txt": "fixed\n"}, "hotfix: the checkout button")
    stays = (
        f"`{first}` v1's code plus 1 commit pushed since `{second}` v2 shipped, which stays: "
        f"`{hotfix[:10]}` hotfix: the checkout button"
    )

    asked = await world.olga.slash(world.general, "release rollback", reason="checkout")

    assert asked.response is not None
    text = asked.response.content
    assert f"\nProduction after: `main` with `{second}` v2 reverted: {stays}\n" in text
    assert "v1 again" not in text
    await world.olga.click(asked.response, label="Roll back")

    [revert] = git(origin.bare, "log", "--format=%H", f"--grep={REVERT_TRAILER}", "main").split()
    lines = asked.response.content.splitlines()
    assert lines[0] == (
        f"⏪ `{second}` v2 — rolled_back 🟢 · Production runs `main` with `{second}` v2 "
        f"reverted: {stays}"
    )
    assert lines[2].startswith(
        f"✅ deploy: deployed `main` at `{revert[:10]}`: `{first}` v1's code plus 1 commit "
        f"pushed since `{second}` v2 shipped · "
    )
    assert deploys(seen)[-1]["CONDUCTOR_SHA"] == revert == git(origin.bare, "rev-parse", "main")
    assert git(origin.bare, "rev-parse", "main^") == hotfix
    [outcome] = [
        m.content for m in thread_of(world, second).history() if "Rolled back" in m.content
    ]
    assert (
        f"\nProduction runs `main` at `{revert[:10]}` with `{second}` v2 reverted: {stays}.\n"
        in outcome
    )
    assert "v1 again" not in outcome


@pytest.mark.parametrize("deploy_then", [BROKEN_WHILE_MARKED])
async def test_a_rollback_whose_deploy_failed_holds_the_train_until_it_is_finished(
    world: World, origin: Origin, seen: Path, broken: Path
) -> None:
    """The rollback's deploy fails after main was reverted: the thread, `/release status`,
    the pinned board and the web board's data say main and production disagree; `/release
    open` asks to confirm, naming it, and records who; `/release rollback` again finishes it
    and nothing holds the train any more."""
    first = await ship(world, origin, "first", "core")
    second = await ship(world, origin, "second", "ui")
    production = production_line(await world.bot.releases.get(GUILD_ID, second))
    broken.touch()

    asked = await world.olga.slash(world.general, "release rollback", reason="bad")
    await world.olga.click(asked.response, label="Roll back")

    [revert] = git(origin.bare, "log", "--format=%H", f"--grep={REVERT_TRAILER}", "main").split()
    half = (
        f"`main` and production disagree: `main` was reverted (`{revert[:10]}`) but production "
        f"still runs `{second}` v2: the rollback's deploy failed (run 3: the deploy command "
        "failed (exit 7))."
    )
    assert asked.response is not None
    assert "❌ deploy: the deploy command failed (exit 7)" in asked.response.content
    [told] = [
        m.content
        for m in thread_of(world, second).history()
        if m.content.startswith(f"❌ The rollback of `{second}`")
    ]
    assert f"\n⚠️ {half} The train is held until the rollback is finished" in told

    status = (await world.bob.slash(world.general, "release status")).response.embeds[0]
    [field] = [f for f in status.fields if f.name == "Production"]
    held, spent = field.value.rsplit("\n", 1)
    assert held == (
        f"{production}\n⚠️ {half} The train is held until the rollback is finished (`/release "
        "rollback` again); `/release open` asks for a confirmation."
    )
    assert spent.startswith("💸 cost unknown: ")  # its handoffs reported none
    [pinned] = world.deployments.pinned_messages()
    assert pinned.embeds[0].description.endswith(f"**Production:** {production}\n⚠️ Held: {half}")
    board = board_data(await world.bot.releases.board(GUILD_ID), GuildRef(GUILD_ID, "x"), ())
    assert board["half_rollback"] == half

    opening = await world.olga.slash(world.general, "release open", name="third")
    assert not opening.ephemeral
    assert opening.response.content == (
        f"⚠️ The train is held: the rollback of `{second}` v2 stopped half way. {half}\n"
        f"A release opened now is assembled on the reverted `main`: it would ship without "
        f"`{second}` v2's changes, while `{second}` v2 still reads shipped.\n"
        f"<@{world.olga.id}> asks to open `third` over it. Open anyway?"
    )
    assert (await world.bot.releases.status(GUILD_ID)).active is None  # asked, not opened
    await world.olga.click(opening.response, label="Open anyway")
    active = (await world.bot.releases.status(GUILD_ID)).active
    assert active is not None and active.held_confirmed_at is not None
    assert (active.held_over_slug, active.held_over_revert, active.held_confirmed_by_id) == (
        second,
        revert,
        world.olga.id,
    )
    held_line = (
        f"⚠️ Opened over `{second}` half rolled back (`main` had its revert `{revert[:10]}`; "
        f"the rollback never finished) — confirmed by olga "
        f"<t:{int(active.held_confirmed_at.timestamp())}:f>"
    )
    opened = world.env.backend.messages[opening.response.channel_id][opening.response.id]
    assert opened.content.startswith(
        f"🧩 Opened `{active.slug}`. Add reviewed tasks with `/release add`.\n{held_line}\n"
    )

    broken.unlink()  # the deploy fixed: the rollback again finishes what was left
    again = await world.olga.slash(world.general, "release rollback", reason="deploy fixed")
    assert again.response is not None
    assert f"Production after: `{first}` v1, merge `" in again.response.content
    await world.olga.click(again.response, label="Roll back")

    assert (await world.bot.releases.get(GUILD_ID, second)).state is ReleaseState.ROLLED_BACK
    status = (await world.bob.slash(world.general, "release status")).response.embeds[0]
    [field] = [f for f in status.fields if f.name == "Production"]
    line, spent = field.value.split("\n")
    assert line == production_line(await world.bot.releases.get(GUILD_ID, first))
    assert spent.startswith("💸 cost unknown: ")
    [pinned] = world.deployments.pinned_messages()
    assert "disagree" not in pinned.embeds[0].description
    board = board_data(await world.bot.releases.board(GUILD_ID), GuildRef(GUILD_ID, "x"), ())
    assert board["half_rollback"] is None


async def test_the_roll_back_button_still_works_after_a_restart(
    world: World, origin: Origin
) -> None:
    await ship(world, origin, "first", "core")
    world.runner.then(RED)
    second = await ship(world, origin, "second", "ui")
    old = world.bot
    await world.env.shutdown()
    await old.close()
    new = create_bot(old.settings, smoke_runner=FakeRunner())
    world.env.bot = new
    await world.env.start()
    await world.env.settle()
    world.bot = new

    shown = await world.olga.click(alert_in(world, second), label="Roll back")

    assert shown.modal is not None
    asked = await world.olga.submit_modal(shown, {})  # no reason given: the default
    assert asked.response is not None
    assert "Why: rolled back from the red alert" in asked.response.content
    await world.olga.click(asked.response, label="Roll back")
    release = await new.releases.get(GUILD_ID, second)
    assert release.state is ReleaseState.ROLLED_BACK
    assert release.rollback_reason == "rolled back from the red alert"


async def test_a_rollback_whose_process_died_is_taken_up_by_the_reconcile(
    world: World, origin: Origin, seen: Path
) -> None:
    first = await ship(world, origin, "first", "core")
    second = await ship(world, origin, "second", "ui")
    # As if a process had started the rollback and died before its first step:
    await open_run(
        world.bot.conductor,
        RunKind.ROLLBACK,
        second,
        actor=Actor("olga", world.olga.id),
        guild_id=GUILD_ID,
        restores_version=1,
        reason="the process died",
    )
    cog = world.bot.get_cog("RunsCog")
    assert cog is not None

    await cog.take_up(world.bot.get_guild(GUILD_ID))  # type: ignore[attr-defined]

    release = await world.bot.releases.get(GUILD_ID, second)
    assert (release.state, release.rollback_reason) == (
        ReleaseState.ROLLED_BACK,
        "the process died",
    )
    said = [m.content for m in thread_of(world, second).history()]
    assert any(
        text.startswith(f"♻️ Conductor stopped during the rollback of `{second}` v2")
        for text in said
    )
    [outcome] = [text for text in said if text.startswith(f"⏪ **Rolled back `{second}` v2**")]
    assert f"Production is `{first}` v1 again." in outcome
    assert deploys(seen)[-1]["CONDUCTOR_RELEASE"] == first


# -- /release redeploy: the third kind of run, through the same edge ---------------------------


async def test_an_operator_redeploys_what_production_runs_and_it_is_recorded(
    world: World, origin: Origin, seen: Path
) -> None:
    slug = await ship(world, origin, "first", "core")
    v1 = await world.bot.releases.get(GUILD_ID, slug)
    main = git(origin.bare, "rev-parse", "main")

    asked = await world.olga.slash(world.general, "release redeploy", reason="host replaced")

    assert asked.response is not None and not asked.ephemeral
    text = asked.response.content
    assert f"asks to redeploy `{slug}` v1, merge `{(v1.merge_sha or '')[:10]}`" in text
    assert "nothing merged, nothing reverted" in text and "Why: host replaced" in text
    assert f"CONDUCTOR_RELEASE={slug} CONDUCTOR_VERSION=v1 CONDUCTOR_SHA={v1.merge_sha}" in text
    assert buttons(asked.response) == ["Redeploy", "Cancel"]
    other = await world.bob.click(asked.response, label="Redeploy")  # only the asker confirms
    assert other.ephemeral and other.response is not None
    assert other.response.content == "Only the operator who asked to redeploy can confirm it."

    await world.olga.click(asked.response, label="Redeploy")

    lines = asked.response.content.splitlines()
    assert lines[0] == f"🔁 Redeployed `{slug}` v1"
    assert lines[1].startswith(f"✅ deploy: deployed `{slug}` v1 again (`{main[:10]}`)")
    assert lines[2].startswith("✅ health gate: healthy after 1 check")
    assert lines[3].startswith("🟢 Smoke seal: green — 6/6 checks passed")
    assert lines[4].startswith("📝 notes: https://discord.com/channels/")
    # exactly what production runs, deployed again: the same release, version and SHA
    assert deploys(seen)[-1] == {
        "CONDUCTOR_RELEASE": slug,
        "CONDUCTOR_VERSION": "v1",
        "CONDUCTOR_SHA": v1.merge_sha,
        "CONDUCTOR_ROLLBACK_OF": None,
    }
    assert git(origin.bare, "rev-parse", "main") == main  # nothing merged, nothing reverted
    [said] = [m.content for m in thread_of(world, slug).history() if "Redeployed" in m.content]
    assert said.startswith(f"🔁 **Redeployed `{slug}` v1** (run 2) by olga\nWhy: host replaced")
    history = await world.bob.slash(world.general, "release history")
    assert "🔁 redeployed by olga" in history.response.content
    assert ": host replaced" in history.response.content
    assert (await world.bot.releases.get(GUILD_ID, slug)).state is ReleaseState.SHIPPED


async def test_redeploy_is_refused_to_a_non_operator_and_while_another_run_runs(
    world: World, origin: Origin, seen: Path
) -> None:
    slug = await ship(world, origin, "first", "core")
    deployed = len(deploys(seen))

    result = await world.bob.slash(world.general, "release redeploy")
    refused(world.env, result, "Only operators can do this")

    actor = Actor("olga", world.olga.id)  # a rollback in flight
    await open_run(world.bot.conductor, RunKind.ROLLBACK, slug, actor=actor, guild_id=GUILD_ID)
    result = await world.olga.slash(world.general, "release redeploy", reason="drift")
    refused(world.env, result, f"A rollback of `{slug}` is already running")
    assert "nothing was redeployed" in result.response.content
    assert len(deploys(seen)) == deployed  # nothing deployed
