"""The seal through Discord: the notes in the release thread with the seal line first, the
rollback ping on red or error, ``/seal`` re-sealing, the board's badges, and a ship that no
failure of the seal or of the notes can undo."""

from __future__ import annotations

from typing import Any

from bot.sample import GUILD_ID
from conductor.states import ReleaseState
from conductor.views import Actor
from smoke import SmokeResult
from smoke.runner import PlaywrightRunner
from tests.helpers import TEST_APP, World, refused, release_by_commands, reviewed

SIGNIN_AND_UP = {"/signin": "selector form input[type=password] not found", "/up": "status 503"}
RED_LINE = (
    "🔴 Smoke seal: red — 2 of 6 failed: /up (status 503), "
    "/signin (selector form input[type=password] not found)"
)


def thread_of(world: World, slug: str) -> Any:
    [thread] = [t for t in world.notes.threads if t.name == slug]
    return thread


def said(channel: Any) -> list[str]:
    """What the channel shows, oldest first."""
    return [m.content for m in channel.history()]


def board_lines(world: World) -> str:
    [pinned] = world.deployments.pinned_messages()
    fields = pinned.embeds[0].fields
    return fields[0].value if fields else ""


async def test_green_ship_posts_notes_with_the_green_line_and_no_ping(world: World) -> None:
    slug = await release_by_commands(world, tasks=("core", "ui"), depends_on={"ui": "core"})
    shipped = await world.olga.slash(world.general, "release ship")
    progress = shipped.response.content
    assert "✅ state flip: 2 members shipped" in progress
    assert "🟢 Smoke seal: green — 6/6 checks passed" in progress
    assert "📝 notes: https://discord.com/channels/" in progress

    [notes] = said(thread_of(world, slug))  # the notes and nothing else: no ping
    lines = notes.splitlines()
    assert lines[0].startswith(f"📦 **Release notes — `{slug}` v1** shipped by olga <t:")
    assert lines[1] == "🟢 Smoke seal: green — 6/6 checks passed"
    # the handoffs of the two members reported no tokens and no cost: unknown, never $0
    assert lines[2] == "💸 cost unknown: none of the 2 handoffs reported tokens or cost (2 members)"
    assert lines[4:] == [
        "**2 members** (by kind, in merge order):",
        "**📎 Other** (2)",
        "• `core` — Core · `feat/core`",
        "• `ui` — Ui · `feat/ui`",
    ]
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.seal_status is not None and release.seal_status.value == "green"
    assert release.seal_summary == "6/6 checks passed"
    assert release.seal_checked_at is not None and release.seal_duration_ms == 1234
    assert [r["path"] for r in release.seal_results] == [
        "/up",
        "/",
        "/signin",
        "/tasks",
        "/tasks",
        "/devops",
    ]
    assert release.notes_posted_at is not None
    assert release.notes_message_id == thread_of(world, slug).last_message.id
    assert f"🚀 `{slug}` v1 — shipped 🟢" in board_lines(world)
    # the runner got the configured checks against the configured production URL
    [app] = world.runner.calls
    assert app.production_url == "http://127.0.0.1:9" and len(app.smoke) == 5


async def test_red_ship_posts_the_red_line_pings_the_operator_and_shows_the_rollback(
    world: World,
) -> None:
    slug = await release_by_commands(world, tasks=("core", "ui"), depends_on={"ui": "core"})
    world.runner.then(SIGNIN_AND_UP)
    shipped = await world.olga.slash(world.general, "release ship")
    assert RED_LINE in shipped.response.content
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.state is ReleaseState.SHIPPED  # a seal, not a gate: nothing undone

    notes, ping = said(thread_of(world, slug))
    assert notes.splitlines()[1] == RED_LINE
    assert ping.startswith(
        f"🚨 <@{world.olga.id}> <@&{world.operators.id}> the smoke seal of `{slug}` v1 is **red**: 2 of 6 failed"
    )
    assert "Nothing was rolled back" in ping
    assert ping.endswith(
        f"```\ngit revert -m 1 <merge_sha> && bin/deploy {slug} v1\n```\n"
        "Fill in `<merge_sha>`: no merge commit is recorded for this release."
    )
    # the mentions really ping, and only these two: the request names exactly whom
    [sent] = [
        r
        for r in world.env.http_requests
        if r.method == "POST"
        and isinstance(r.json, dict)
        and str(r.json.get("content", "")).startswith("🚨")
    ]
    assert sent.json is not None
    allowed = sent.json["allowed_mentions"]
    assert [int(u) for u in allowed["users"]] == [world.olga.id]
    assert [int(r) for r in allowed["roles"]] == [world.operators.id]
    assert allowed.get("parse", []) == []  # no one by kind: not every user, role, everyone
    assert f"🚀 `{slug}` v1 — shipped 🔴" in board_lines(world)


async def test_a_runner_error_still_ships_posts_notes_and_pings(world: World) -> None:
    slug = await release_by_commands(world, name="one")
    world.runner.then(SmokeResult.failure("Chromium not found at /nope/chromium"))
    shipped = await world.olga.slash(world.general, "release ship")
    line = (
        "⚠️ Smoke seal: error — the smoke runner could not run: Chromium not found at /nope/chromium"
    )
    assert line in shipped.response.content
    notes, ping = said(thread_of(world, slug))
    assert notes.splitlines()[1] == line
    assert "is **error**" in ping and f"<@{world.olga.id}>" in ping
    assert "⚠️" in board_lines(world)
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.state is ReleaseState.SHIPPED
    assert release.seal_error == "Chromium not found at /nope/chromium"


async def test_a_runner_that_raises_is_an_error_seal_not_a_failed_ship(world: World) -> None:
    slug = await release_by_commands(world, name="one")
    world.runner.then(RuntimeError("browser exploded"))
    shipped = await world.olga.slash(world.general, "release ship")
    assert (
        "⚠️ Smoke seal: error — the smoke runner could not run: the runner crashed: RuntimeError('browser exploded')"
        in shipped.response.content
    )
    notes, _ping = said(thread_of(world, slug))
    assert "Smoke seal: error" in notes
    assert (await world.bot.releases.get(GUILD_ID, slug)).state is ReleaseState.SHIPPED


async def test_a_malformed_check_config_is_an_error_seal_and_the_ship_completes(
    world: World,
) -> None:
    slug = await release_by_commands(world, name="one")
    world.bot.sealer.app_table = {**TEST_APP, "smoke": [{"path": "no-slash"}]}
    shipped = await world.olga.slash(world.general, "release ship")
    assert "✅ state flip: 1 member shipped" in shipped.response.content
    notes, ping = said(thread_of(world, slug))
    assert notes.splitlines()[1] == (
        "⚠️ Smoke seal: error — the smoke runner could not run: the [app] config is invalid: "
        "app.smoke.0.path: must start with '/' (got 'no-slash')"
    )
    # no template could be read, so the ping says how it stands instead of a command
    assert "no rollback command is configured" in ping
    assert world.runner.calls == []  # the runner was never asked


async def test_a_missing_chromium_with_the_real_runner_is_an_error_seal(world: World) -> None:
    slug = await release_by_commands(world, name="one")
    world.bot.sealer.runner = PlaywrightRunner()
    world.bot.sealer.app_table = {**TEST_APP, "chromium_path": "/nonexistent/chromium"}
    await world.olga.slash(world.general, "release ship")
    notes, _ping = said(thread_of(world, slug))
    seal = notes.splitlines()[1]
    assert seal.startswith("⚠️ Smoke seal: error — the smoke runner could not run:"), seal
    assert "/nonexistent/chromium" in seal
    assert (await world.bot.releases.get(GUILD_ID, slug)).state is ReleaseState.SHIPPED


async def test_no_app_configured_ships_with_a_not_run_line_and_no_badge(world: World) -> None:
    slug = await release_by_commands(world, name="one")
    world.bot.sealer.app_table = None
    shipped = await world.olga.slash(world.general, "release ship")
    assert "⚪ smoke seal: not run" in shipped.response.content
    [notes] = said(thread_of(world, slug))
    assert notes.splitlines()[1].startswith("⚪ Smoke seal: not run")
    assert board_lines(world) == f"🚀 `{slug}` v1 — shipped"  # unsealed: no badge
    refused(world.env, await world.olga.slash(world.general, "seal"), "No `[app]` is configured")


async def test_seal_reseals_replaces_the_verdict_and_keeps_the_history(world: World) -> None:
    slug = await release_by_commands(world, tasks=("core", "ui"), depends_on={"ui": "core"})
    world.runner.then(SIGNIN_AND_UP)
    await world.olga.slash(world.general, "release ship")
    assert "v1 — shipped 🔴" in board_lines(world)

    resealed = await world.olga.slash(world.general, "seal")  # green by default
    assert resealed.response.content.startswith("🟢 Smoke seal: green — 6/6 checks passed")
    thread = thread_of(world, slug)
    assert thread.last_message.content == (
        f"🔁 Re-sealed `{slug}` v1 by olga (was 🔴 red):\n🟢 Smoke seal: green — 6/6 checks passed"
    )
    assert len(said(thread)) == 3  # notes, red ping, re-seal; no new ping on green
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.seal_status is not None and release.seal_status.value == "green"
    history = await world.bot.seals.history(GUILD_ID, slug)
    assert [(h.status.value, h.trigger, h.sealed_by) for h in history] == [
        ("red", "ship", "olga"),
        ("green", "reseal", "olga"),
    ]
    assert f"🚀 `{slug}` v1 — shipped 🟢" in board_lines(world)

    # red again, by name: the ping goes to whoever re-sealed
    world.runner.then({"/tasks": "status 500 (expected 200)"})
    again = await world.olga.slash(world.general, "seal", release=slug)
    assert (
        "🔴 Smoke seal: red — 2 of 6 failed: /tasks (status 500 (expected 200))"
        in again.response.content
    )
    *_, reseal, ping = said(thread)
    assert "(was 🟢 green)" in reseal
    assert ping.startswith(f"🚨 <@{world.olga.id}> <@&{world.operators.id}>")
    assert len(await world.bot.seals.history(GUILD_ID, slug)) == 3


async def test_seal_picks_the_last_shipped_release_and_autocompletes(world: World) -> None:
    first = await release_by_commands(world, name="first")
    await world.olga.slash(world.general, "release ship")
    second = await release_by_commands(world, name="second", tasks=("api",))
    await world.olga.slash(world.general, "release ship")
    await world.olga.slash(world.general, "seal")
    assert len(await world.bot.seals.history(GUILD_ID, second)) == 2
    assert len(await world.bot.seals.history(GUILD_ID, first)) == 1
    choices = await world.olga.autocomplete(world.general, "seal", "release", "")
    assert [c["value"] for c in choices] == [second, first]


async def test_seal_refusals(world: World) -> None:
    refused(world.env, await world.olga.slash(world.general, "seal"), "Nothing has shipped yet")
    refused(
        world.env,
        await world.olga.slash(world.general, "seal", release="nope"),
        "No release `nope`",
    )
    slug = await release_by_commands(world, name="one")
    refused(
        world.env,
        await world.olga.slash(world.general, "seal", release=slug),
        f"Release `{slug}` is assembled; only a shipped release has production to seal.",
    )
    await world.olga.slash(world.general, "release ship")
    refused(world.env, await world.bob.slash(world.general, "seal"), "Only operators can do this")
    assert world.runner.calls and len(world.runner.calls) == 1  # only the ship's seal ran


async def test_notes_that_fail_to_post_are_posted_later_exactly_once(world: World) -> None:
    slug = await release_by_commands(world, name="one")
    thread_id = (await world.bot.releases.get(GUILD_ID, slug)).notes_thread_id
    world.env.inject_error("POST", f"/channels/{thread_id}/messages", status=500, times=1)
    world.runner.then({"/up": "status 503"})
    shipped = await world.olga.slash(world.general, "release ship")
    assert "⚠️ notes: not posted yet" in shipped.response.content
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.state is ReleaseState.SHIPPED and release.notes_posted_at is None
    assert said(thread_of(world, slug)) == []

    await world.env.advance_time(200)  # the reconcile runs every 3 minutes
    notes, ping = said(thread_of(world, slug))
    assert "🔴 Smoke seal: red — 1 of 6 failed: /up (status 503)" in notes
    assert ping.startswith(f"🚨 <@{world.olga.id}>")  # the one who shipped
    assert len(world.runner.calls) == 1  # the stored seal was used, not run again
    await world.env.advance_time(200)
    assert len(said(thread_of(world, slug))) == 2  # exactly once


async def test_without_a_thread_the_notes_go_to_the_notes_channel(world: World) -> None:
    await reviewed(world.bot, "core")
    world.env.inject_error("POST", "/channels/*/threads", status=500)
    await world.olga.slash(world.general, "release open", name="nothread")
    for command, options in (("release add", {"task": "core"}), ("release assemble", {})):
        await world.olga.slash(world.general, command, **options)
    await world.olga.slash(world.general, "release ship")
    [notes] = said(world.notes)
    assert "🟢 Smoke seal: green — 6/6 checks passed" in notes


async def test_a_ship_interrupted_before_its_seal_is_sealed_and_noted_on_the_next_round(
    world: World,
) -> None:
    """The process stopped between the flip and the seal: the reconcile seals it, then posts
    the notes, pinging the operator who shipped when it is red."""
    slug = await release_by_commands(world, name="one")
    await world.bot.releases.ship(GUILD_ID, Actor("olga", world.olga.id))  # the flip alone
    assert said(thread_of(world, slug)) == []
    world.runner.then({"/": 'text "Studio" not found'})
    await world.env.advance_time(200)
    notes, ping = said(thread_of(world, slug))
    assert notes.splitlines()[1] == (
        '🔴 Smoke seal: red — 1 of 6 failed: / (text "Studio" not found)'
    )
    assert ping.startswith(f"🚨 <@{world.olga.id}> <@&{world.operators.id}>")
    history = await world.bot.seals.history(GUILD_ID, slug)
    assert [(h.status.value, h.trigger, h.sealed_by) for h in history] == [("red", "ship", None)]
