"""Not a benchmark: regenerates the pictures of the ``/deployments`` board in ``docs/``.

    .venv/bin/python -m bench.board_screenshot [--out docs]

Builds a realistic train on a fresh SQLite file through the domain (handoffs, two ✅ each,
open, add, assemble with a real RC branch in a local git origin, ship), sealed for real in
Chromium against the local sample app: v1
green; v2 red (the sample app broken: the sign-in form gone, ``/tasks`` answering 500, each
failed page photographed), then rolled back; v3 green, what production runs; and an active
release with its members. Serves the board on 127.0.0.1 (a free port) and photographs it in
a plain Chromium: ``deployments-board.png`` (1280 wide), ``deployments-board-phone.png``
(375 wide), and the red release's own page, ``deployments-release.png`` (its members and
their notes, both seals with the failed pages, the ship and the rollback step by step, its
thread and commit links). The badges are emoji: Chromium needs an emoji font (Debian:
fonts-noto-color-emoji) for them to show in the pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from itertools import count
from pathlib import Path

from playwright.async_api import async_playwright

from bot.settings import WebSettings
from bot.web import BoardServer, BoardSource
from conductor.bootstrap import Conductor, bootstrap
from conductor.releases.git import IDENTITY
from conductor.releases.runs.driver import RunRequest
from conductor.states import RunKind
from conductor.views import Actor, IncomingMessage, Reactor
from smoke.runner import LAUNCH_ARGS
from smoke.sample_app import SampleApp, sample_app_table
from store.db import Database

GUILD = 1001
GUILD_NAME = "Studio"
CHROMIUM = "/usr/bin/chromium"
OLGA = Actor("olga", 501)
REVIEWERS = (Reactor(601, "carl"), Reactor(602, "alex"))
TASKS = {
    "deploy-foundation": ("Deploy foundation: bin/deploy and the /up gate", "chore", None),
    "release-model": ("Release model + task links", "feature", "deploy-foundation"),
    "passkeys": ("Sign-in with passkeys", "feature", None),
    "task-search": ("Search across tasks and comments", "feature", None),
    "dark-mode": ("Dark mode for the editor", "feature", None),
    "editor-shortcuts": ("Keyboard shortcuts in the editor", "feature", "dark-mode"),
    "flaky-upload": ("Fix the flaky avatar upload on slow networks", "bug", None),
}
_ids = count(10_000)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - git, fixed arguments
        ["git", *args],  # noqa: S607
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY},
    )
    return done.stdout.strip()


def origin(root: Path) -> Path:
    """A bare origin with ``main`` and each task's branch; Conductor's clone of it."""
    bare, agent, clone = root / "origin.git", root / "agent", root / "clone"
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git(root, "clone", "--quiet", str(bare), str(agent))
    (agent / "README").write_text("studio\n")
    git(agent, "add", "--all")
    git(agent, "commit", "--quiet", "-m", "studio")
    git(agent, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    for slug in TASKS:
        git(agent, "checkout", "--quiet", "-B", f"feat/{slug}", "main")
        (agent / f"{slug}.txt").write_text(f"{slug}\n")
        git(agent, "add", "--all")
        git(agent, "commit", "--quiet", "-m", slug)
        git(agent, "push", "--quiet", "origin", f"HEAD:refs/heads/feat/{slug}")
    git(root, "clone", "--quiet", str(bare), str(clone))
    return clone


async def reviewed(domain: Conductor, slug: str) -> None:
    """``slug`` submitted by an agent's handoff and approved by two reviewers."""
    title, kind, needs = TASKS[slug]
    text = f"handoff {slug} → submitted\ntitle: {title}\nbranch: feat/{slug}\nkind: {kind}"
    if needs:
        text += f"\ndepends-on: {needs}"
    text += "\nmodel: claude-opus-4-8\n\nBuilt and tested; ready for review."
    message = IncomingMessage(GUILD, 42, next(_ids), 900, "machoke", "bot", text)
    result = await domain.handoffs.apply(message)
    assert result.review is not None, result
    message_id = next(_ids)
    await domain.reviews.attach_message(result.review.request_id, 77, message_id)
    for reviewer in REVIEWERS:
        await domain.reviews.record_approval(GUILD, message_id, reviewer)


async def release(
    domain: Conductor, name: str, slugs: list[str], *, ship: bool, over: str | None = None
) -> str:
    for slug in slugs:
        await reviewed(domain, slug)
    opened = await domain.releases.open(GUILD, name, OLGA, over_held=over)
    for slug in slugs:
        await domain.releases.add_task(GUILD, slug, OLGA)
    if ship:
        await domain.assembly.assemble(GUILD, OLGA)
        outcome = await domain.runs.start(RunKind.SHIP, GUILD, OLGA)
        assert outcome.seal is not None, outcome
    return opened.slug


async def build(domain: Conductor, app: SampleApp) -> str:
    """The train; the red release's slug."""
    await release(domain, "deploy-foundation", ["deploy-foundation", "release-model"], ship=True)
    app.break_signin()
    app.set_status("/tasks", 500)
    red = await release(domain, "passkeys", ["passkeys"], ship=True)
    await domain.releases.set_notes_thread(GUILD, red, 1_234_567_890_123)
    app.heal()
    await domain.runs.start(
        RunKind.ROLLBACK,
        GUILD,
        Actor("rita", 502),
        request=RunRequest(reason="the sign-in form is gone in production"),
    )
    await release(domain, "search", ["task-search"], ship=True)
    await release(domain, "editor", ["dark-mode", "editor-shortcuts", "flaky-upload"], ship=False)
    return red


async def photograph(url: str, red: str, out: Path) -> list[Path]:
    written = []
    page_url = url.replace("/deployments", f"/deployments/releases/{red}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=list(LAUNCH_ARGS))
        try:
            for name, address, (width, height), scale in (
                ("deployments-board.png", url, (1280, 900), 1),
                ("deployments-board-phone.png", url, (375, 812), 2),
                ("deployments-release.png", page_url, (1280, 900), 1),
            ):
                context = await browser.new_context(
                    viewport={"width": width, "height": height},
                    device_scale_factor=scale,
                    color_scheme="light",
                )
                page = await context.new_page()
                await page.goto(address)
                await page.wait_for_function(
                    "() => [...document.images].every((i) => i.complete && i.naturalWidth > 0)"
                )
                target = out / name
                await page.screenshot(path=str(target), full_page=True)
                written.append(target)
                await context.close()
        finally:
            await browser.close()
    return written


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="board-") as tmp:
        database = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'conductor.db'}")
        await database.create_all()
        async with SampleApp() as app:
            clone = origin(Path(tmp))
            domain = bootstrap(
                database=database,
                app=sample_app_table(app.url),
                git={"path": str(clone), "main": "main", "remote": "origin"},
            )
            try:
                red = await build(domain, app)
                source = BoardSource(
                    releases=domain.releases,
                    evidence=domain.sealer.evidence,
                    database=domain.db,
                    default_guild=GUILD,
                    guild_name={GUILD: GUILD_NAME}.get,
                    gateway=lambda: None,
                    commit_url="https://github.com/studio/app/commit/{sha}",
                )
                server = BoardServer(source, WebSettings(port=0))
                assert await server.start()
                try:
                    assert server.url is not None
                    for path in await photograph(server.url, red, out):
                        print(f"wrote {path}")
                finally:
                    await server.stop()
            finally:
                await domain.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    asyncio.run(main(parser.parse_args().out))
