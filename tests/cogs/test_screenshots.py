"""The evidence of a red seal through Discord: the alert in the release thread carries the
screenshot of each failed page as files (ten at most; it says where the others are), the
files are on disk with the seal record, ``/seal`` re-sealing red attaches its own, and a
refused upload still lets the alert through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord

from bot.sample import GUILD_ID
from conductor.releases.runs.sink import PostedNotes
from conductor.seals.evidence import Attachment
from smoke.runner import PlaywrightRunner
from smoke.sample_app import SampleApp, sample_app_table
from tests.helpers import IN_VAIN, World, png, png_size, red_with_screenshots, release_by_commands


def thread_of(world: World, slug: str) -> Any:
    [thread] = [t for t in world.notes.threads if t.name == slug]
    return thread


def alert_in(thread: Any) -> discord.Message:
    messages: list[discord.Message] = thread.history()
    [alert] = [m for m in messages if m.content.startswith("🚨")]
    return alert


def screenshots_root(world: World) -> Path:
    """The bot's database is ``bot.db`` in the test's directory: the screenshots are beside."""
    root = world.bot.sealer.evidence.root
    assert root is not None
    return root


async def test_a_red_ship_in_real_chromium_attaches_the_failed_page_and_keeps_it(
    world: World, sample_app: SampleApp, tmp_path: Path
) -> None:
    sample_app.break_signin()
    checks = [
        {"path": "/", "expect_text": "Studio"},
        {"path": "/signin", "selector": "form input[type=password]", "timeout": IN_VAIN},
    ]
    world.bot.sealer.runner = PlaywrightRunner()
    world.bot.sealer.app_table = sample_app_table(sample_app.url, smoke=checks)
    slug = await release_by_commands(world)

    await world.olga.slash(world.general, "release ship")

    alert = alert_in(thread_of(world, slug))
    assert "**red**: 1 of 3 failed: /signin (selector form input[type=password] not found)" in (
        alert.content
    )
    assert alert.content.endswith("\n📸 1 screenshot of the failed page attached.")
    [attachment] = alert.attachments
    assert attachment.filename == "02-signin.png"
    data = await attachment.read()  # through discord.py, from simcord's CDN
    assert png_size(data) == (1280, 720)
    # on disk, beside the database, and named in the seal record
    assert screenshots_root(world) == tmp_path / "screenshots"
    [kept] = sorted((tmp_path / "screenshots").rglob("*.png"))
    assert kept.read_bytes() == data
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert [c.get("screenshot_file") for c in release.seal_results] == [
        None,
        None,
        kept.relative_to(tmp_path / "screenshots").as_posix(),
    ]


async def test_thirteen_failed_pages_attach_ten_and_the_alert_says_where_the_rest_are(
    world: World,
) -> None:
    slug = await release_by_commands(world)
    result = red_with_screenshots([f"/page-{n}" for n in range(1, 14)])
    world.runner.then(result)

    await world.olga.slash(world.general, "release ship")

    alert = alert_in(thread_of(world, slug))
    assert [a.filename for a in alert.attachments] == [
        f"{n:02d}-page-{n}.png" for n in range(1, 11)
    ]
    for n, attachment in enumerate(alert.attachments, start=1):
        assert await attachment.read() == result.checks[n].screenshot
    [seal_dir] = (screenshots_root(world) / str(GUILD_ID) / slug).iterdir()
    assert sorted(p.name for p in seal_dir.iterdir()) == [
        f"{n:02d}-page-{n}.png" for n in range(1, 14)
    ]
    assert alert.content.endswith(
        "\n📸 10 of 13 screenshots of the failed pages attached; 3 more are on disk with the "
        f"seal record: `{seal_dir}` (one message takes 10 files, 8 MiB)."
    )
    # the files ride on the one message that pings, and on no other
    assert [m for m in thread_of(world, slug).history() if m.attachments] == [alert]


async def test_a_red_reseal_attaches_its_screenshots(world: World) -> None:
    slug = await release_by_commands(world)
    await world.olga.slash(world.general, "release ship")  # green: no alert, no files
    assert [m for m in thread_of(world, slug).history() if m.attachments] == []
    world.runner.then(red_with_screenshots(["/tasks"]))

    resealed = await world.olga.slash(world.general, "seal")

    assert resealed.response.content.startswith(
        "🔴 Smoke seal: red — 1 of 2 failed: /tasks (status 500)"
    )
    alert = alert_in(thread_of(world, slug))
    [attachment] = alert.attachments
    assert attachment.filename == "01-tasks.png"
    assert png_size(await attachment.read()) == (8, 6)
    [kept] = sorted(screenshots_root(world).rglob("*.png"))
    assert kept.parent.name.endswith("-reseal")


async def test_an_upload_discord_refuses_still_lets_the_alert_ping(world: World) -> None:
    slug = await release_by_commands(world)
    await world.olga.slash(world.general, "release ship")
    thread = thread_of(world, slug)
    channel = world.bot.get_channel(thread.id)
    assert channel is not None
    posted = PostedNotes(1, "https://discord.com/channels/x", channel)
    world.env.inject_error(
        "POST", f"/channels/{thread.id}/messages", status=403, code=50013,
        message="Missing Permissions",
    )  # fmt: skip

    await world.bot.discord_notes.ping(
        GUILD_ID,
        posted,
        f"🚨 <@{world.olga.id}> the smoke seal of `{slug}` is **red**",
        user_id=world.olga.id,
        attachments=[Attachment("01-signin.png", png())],
    )

    alert = alert_in(thread)
    assert alert.attachments == []
    assert alert.content.endswith(
        "\n(Discord refused the screenshots: 403; is *Attach Files* allowed here?)"
    )
    [message] = [m for m in world.env.backend.messages[thread.id].values() if m.id == alert.id]
    assert list(message.ping_user_ids) == [world.olga.id]  # it still pings
