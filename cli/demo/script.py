"""``conductor demo``: the whole release train offline, printed as each channel shows it.

No Discord token and no network: the real bot (``create_bot`` with the real Playwright runner
in Debian's Chromium) runs in-process against simcord, a local stand-in for Discord, and seals
against :class:`smoke.sample_app.SampleApp`, a small "production" on 127.0.0.1. The script:

1. agents hand off three tasks (a bot user, a channel webhook, a teammate), one depending on
   another; a handoff the grammar refuses gets ⚠️ and the reason;
2. teammates approve with ✅; the author's own ✅ is shown not to count;
3. the operator opens a release, adds the tasks (a blocked add is refused first), assembles
   and ships: the seal comes back green and the notes land in the release's thread;
4. a second release; production breaks before its ship: the seal is red, the notes carry the
   red line, and the operator and the operator role are pinged with the rollback command;
5. the operator fixes production and re-seals with ``/seal``: green again.

Every step checks what the bot did and stops with one line saying what went wrong. This module
is an entry point: it imports discord.py and simcord (a dev dependency) at import time, so
``cli.main`` imports it only when ``conductor demo`` runs.

simcord's public API drives the users; the live feed of what each channel shows comes from the
backend's event subscribers (``env.backend.subscribers``), which simcord 3.2.1 (pinned) keeps
as plain callables: every gateway event, edits included, as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simcord
from rich.console import Console
from rich.text import Text

from bot.client import ConductorBot, create_bot
from bot.sample import GUILD_ID, sample_settings
from bot.settings import Settings
from cli.demo.transcript import Transcript
from cli.run import without_voice_warnings
from conductor.releases.git import IDENTITY
from conductor.releases.sandbox import Sandbox
from conductor.states import TaskState
from smoke.config import default_chromium
from smoke.runner import PlaywrightRunner, chromium_problem
from smoke.sample_app import SampleApp, sample_app_table, sample_checks, serve_in_thread
from store.db import Database

__all__ = ["DEADLINE_SECONDS", "DemoFailure", "main", "play"]

#: the demo stops (exit 1) when it has not finished by then
DEADLINE_SECONDS = 120.0
#: each smoke check's timeout in the demo: the local pages answer in milliseconds, and a
#: broken page costs its whole timeout
CHECK_TIMEOUT = 5.0
#: real seconds simcord waits for the bot to settle after a step (a seal runs real Chromium)
SETTLE_SECONDS = 60.0

GREEN_LINE = "🟢 Smoke seal: green — 6/6 checks passed"
RED_PREFIX = "🔴 Smoke seal: red —"

log = logging.getLogger(__name__)


class DemoFailure(Exception):
    """A step did not do what it should; the message is the one line the user sees."""


#: each task's branch and the file it adds
BRANCHES = {
    "core": ("feat/core-release-model", "core.py", "RELEASE_STATES = ('assembling', 'shipped')\n"),
    "ui": ("feat/release-board", "board.py", "def render(release):\n    return release\n"),
    "docs": ("docs/runbook", "RUNBOOK.md", "# Runbook\n\nShip on green.\n"),
    "search": ("feat/task-search", "search.py", "def search(tasks, text):\n    return []\n"),
}
#: the test command run on each RC head: every Python file compiles
TEST_COMMAND = 'for f in *.py; do python3 -m py_compile "$f" || exit 1; done; echo compiled *.py'


class DemoRepo:
    """The team's repository, local: a bare ``origin`` the agents push their branches to,
    and the clone Conductor assembles and ships from."""

    def __init__(self, root: Path) -> None:
        self.origin = root / "origin.git"
        self.clone = root / "clone"
        agent = root / "agent"
        root.mkdir(parents=True, exist_ok=True)
        self._git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.origin))
        self._git(root, "clone", "--quiet", str(self.origin), str(agent))
        (agent / "app.py").write_text("print('Studio')\n")
        self._git(agent, "add", "--all")
        self._git(agent, "commit", "--quiet", "-m", "Studio")
        self._git(agent, "push", "--quiet", "origin", "HEAD:refs/heads/main")
        for branch, name, text in BRANCHES.values():
            self._git(agent, "checkout", "--quiet", "-B", branch, "main")
            (agent / name).write_text(text)
            self._git(agent, "add", "--all")
            self._git(agent, "commit", "--quiet", "-m", f"Add {name}")
            self._git(agent, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        self._git(root, "clone", "--quiet", str(self.origin), str(self.clone))

    @staticmethod
    def _git(cwd: Path, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - git, fixed arguments
            [shutil.which("git") or "git", *args], cwd=cwd, check=True, capture_output=True,
            text=True, env={**os.environ, **IDENTITY},
        )  # fmt: skip
        return done.stdout.strip()

    def main(self) -> str:
        return self._git(self.origin, "rev-parse", "main")


def production(tmp: Path) -> Path:
    """The sample production's directory, which the sandboxed deploy is granted to write: its
    own user's (``nobody`` when the demo runs as root), reachable through ``tmp``."""
    where = tmp / "production"
    if not where.exists():
        where.mkdir()
        Sandbox().own(where)
        tmp.chmod(0o711)  # the sandbox's user finds its way in, and lists nothing
    return where


def demo_settings(
    database_url: str, production_url: str, repo: DemoRepo, version_file: Path
) -> Settings:
    checks = [{**check, "timeout": CHECK_TIMEOUT} for check in sample_checks()]
    return sample_settings(
        database_url,
        app=sample_app_table(production_url, smoke=checks, health_timeout=CHECK_TIMEOUT),
        git={"path": str(repo.clone), "test_command": TEST_COMMAND, "test_timeout": 60},
        deploy={
            # the sample app shows what this writes: production switches to the new version
            "command": f'echo "$CONDUCTOR_VERSION ($CONDUCTOR_SHA)" > {version_file}',
            "timeout": 30,
            "health_timeout": CHECK_TIMEOUT,
            "health_interval": 0.1,
            "log_dir": str(version_file.parent.parent / "deploy-logs"),
            "write": [str(version_file.parent)],
        },
    )


# -- the world: a guild, its channels, roles and people --------------------------------------


@dataclass
class Cast:
    env: simcord.Env
    bot: ConductorBot
    show: Transcript
    app: SampleApp
    guild: Any
    general: Any
    handoffs: Any
    reviews: Any
    notes: Any
    deployments: Any
    operators: Any
    olga: Any  # the operator
    carl: Any  # teammates
    alex: Any
    machoke: Any  # an agent, as a bot user
    hook: Any  # a CI agent, through the channel's webhook
    repo: DemoRepo | None = None


def build_world(
    env: simcord.Env, bot: ConductorBot, show: Transcript, app: SampleApp, repo: DemoRepo
) -> Cast:
    guild = env.create_guild("Release Train", id=GUILD_ID)
    operators = guild.create_role("Operators")
    show.role(operators.id, "Operators")
    channels = {
        name: guild.create_text_channel(name)
        for name in ("general", "handoffs", "reviews", "release-notes", "deployments")
    }
    for name, handle in channels.items():
        show.channel(handle.id, f"#{name}")
    people = {}
    for name, roles in (("olga", [operators]), ("carl", []), ("alex", [])):
        people[name] = guild.add_member(env.create_user(name), roles=roles)
        show.user(people[name].id, name)
    machoke = guild.add_member(env.create_user("machoke", bot=True))
    show.user(machoke.id, "machoke", "agent")
    hook = guild.create_webhook(channels["handoffs"], "ci-agent")
    return Cast(
        env,
        bot,
        show,
        app,
        guild,
        channels["general"],
        channels["handoffs"],
        channels["reviews"],
        channels["release-notes"],
        channels["deployments"],
        operators,
        people["olga"],
        people["carl"],
        people["alex"],
        machoke,
        hook,
        repo,
    )


# -- the script ------------------------------------------------------------------------------


def handoff(slug: str, state: str, *headers: str, note: str = "") -> str:
    text = "\n".join([f"handoff {slug} → {state}", *headers])
    return f"{text}\n\n{note}" if note else text


class Script:
    def __init__(self, cast: Cast) -> None:
        self.c = cast
        self.step = "starting"
        #: the bot's errors up to here were expected (a refusal answered in Discord)
        self.acknowledged = 0

    # -- helpers -----------------------------------------------------------------------------

    async def state(self, slug: str) -> TaskState:
        return (await self.c.bot.tasks.card(GUILD_ID, slug)).task.state

    async def expect_state(self, slug: str, wanted: TaskState) -> None:
        got = await self.state(slug)
        if got is not wanted:
            raise DemoFailure(f"{self.step}: task {slug} is {got.value}, expected {wanted.value}")

    def review_of(self, slug: str) -> Any:
        for message in reversed(self.c.reviews.history()):
            if f"`{slug}`" in message.content:
                return message
        raise DemoFailure(f"{self.step}: no review request for {slug} in #reviews")

    async def slash(self, member: Any, command: str, /, **options: Any) -> Any:
        who = member.user.name
        self.c.show.command(who, self.c.general.id, command, options)
        result = await member.slash(self.c.general, command, **options)
        response = result.response
        if response is not None and response.ephemeral:
            self.c.show.ephemeral(who, self.c.general.id, response.content)
        return result

    def thread(self, slug: str) -> Any:
        for thread in self.c.notes.threads:
            if thread.name == slug:
                return thread
        raise DemoFailure(f"{self.step}: no thread {slug} in #release-notes")

    async def active_slug(self) -> str:
        active = (await self.c.bot.releases.status(GUILD_ID)).active
        if active is None:
            raise DemoFailure(f"{self.step}: no active release")
        return active.slug

    # -- the acts ----------------------------------------------------------------------------

    async def handoffs(self) -> None:
        c = self.c
        self.step = "the handoffs"
        c.show.section("1 · Agents hand off their work in #handoffs")
        c.show.narrate("machoke, an agent with a bot account, walks `core` up to submitted")
        await c.machoke.send(
            c.handoffs,
            handoff("core", "designed", "title: Core release model", "kind: feature"),
        )
        await c.machoke.send(
            c.handoffs, handoff("core", "building", f"branch: {BRANCHES['core'][0]}")
        )
        await c.machoke.send(
            c.handoffs,
            handoff(
                "core",
                "submitted",
                "model: claude-opus-4-8",
                "tokens: 52,276,348",
                "cost: $33.96",
                note="Release model foundation (singleton + task links). 795/0/0 green.",
            ),
        )
        await self.expect_state("core", TaskState.SUBMITTED)

        c.show.narrate("a CI agent posts through the channel's webhook: `ui` depends on `core`")
        await c.hook.send(
            handoff(
                "ui",
                "building",
                "title: Release board UI",
                f"branch: {BRANCHES['ui'][0]}",
                "kind: feature",
                "depends-on: core",
            ),
            username="claude",
        )
        c.show.narrate("it tries to mark `ui` reviewed itself: the grammar refuses, with why")
        await c.hook.send(handoff("ui", "reviewed"), username="claude")
        await self.expect_state("ui", TaskState.BUILDING)
        await c.hook.send(
            handoff("ui", "submitted", "tokens: 8,120,400", note="Board renders; 64 tests green."),
            username="claude",
        )
        await self.expect_state("ui", TaskState.SUBMITTED)

        c.show.narrate("carl, a teammate, hands off `docs` himself")
        await c.carl.send(
            c.handoffs,
            handoff("docs", "designed", "title: Operator runbook", "kind: chore"),
        )
        await c.carl.send(
            c.handoffs,
            handoff("docs", "submitted", f"branch: {BRANCHES['docs'][0]}", note="Proofread."),
        )
        await self.expect_state("docs", TaskState.SUBMITTED)

    async def reviews(self) -> None:
        c = self.c
        self.step = "the reviews"
        c.show.section("2 · Teammates review in #reviews")
        for slug in ("core", "ui"):
            request = self.review_of(slug)
            await c.carl.react(request, "✅")
            await c.alex.react(request, "✅")
            await self.expect_state(slug, TaskState.REVIEWED)

        request = self.review_of("docs")
        c.show.narrate("carl approves his own task `docs`…")
        await c.carl.react(request, "✅")
        content = self.review_of("docs").content
        if (
            "**0/2 approvals**" not in content
            or await self.state("docs") is not TaskState.SUBMITTED
        ):
            raise DemoFailure(f"{self.step}: the author's own ✅ on docs was counted")
        c.show.narrate(
            "…and it does not count: carl is the author, so `docs` stays submitted at 0/2 approvals"
        )
        await c.alex.react(request, "✅")
        await c.olga.react(request, "✅")
        await self.expect_state("docs", TaskState.REVIEWED)

    async def first_release(self) -> None:
        c = self.c
        self.step = "the first release"
        c.show.section("3 · olga ships the first release")
        await self.slash(c.olga, "release open", name="train")
        slug = await self.active_slug()
        c.show.narrate("`ui` needs `core` aboard first: the add is refused, naming the blocker")
        refused = await self.slash(c.olga, "release add", task="ui")
        if refused.response is None or not refused.response.ephemeral:
            raise DemoFailure(f"{self.step}: adding ui before core was not refused")
        simcord.assert_error(c.env, contains="core")  # the refusal simcord recorded
        self.acknowledged = c.env.error_cursor
        for task in ("core", "ui", "docs"):
            await self.slash(c.olga, "release add", task=task)
        c.show.narrate(
            "assembling merges each member's branch into release/" + slug + " in merge order, "
            "then runs the tests on the RC head"
        )
        await self.slash(c.olga, "release assemble")
        release = await c.bot.releases.get(GUILD_ID, slug)
        if release.rc_head is None or release.rc_tests is None or not release.rc_tests.passed:
            raise DemoFailure(f"{self.step}: {slug} has no tested RC branch")
        c.show.narrate(
            "shipping: main fast-forwards to the RC on origin, the deploy switches production "
            "to v1, the health gate waits for 200, then the flip, the seal and the notes"
        )
        await self.slash(c.olga, "release ship")
        notes = [m.content for m in self.thread(slug).history()]
        if not notes or GREEN_LINE not in notes[0]:
            raise DemoFailure(f"{self.step}: the seal of {slug} was not green: {notes[:1]}")
        shipped = await c.bot.releases.get(GUILD_ID, slug)
        if c.repo is not None and c.repo.main() != shipped.merge_sha:
            raise DemoFailure(f"{self.step}: main on origin is not at the RC of {slug}")
        running = c.app.running() or ""
        if not running.startswith("v1 "):
            raise DemoFailure(f"{self.step}: production does not run v1: {running!r}")
        c.show.narrate(
            f"origin's main is at {shipped.merge_sha[:10] if shipped.merge_sha else '?'}; production says: Running {running}"
        )

    async def second_release(self) -> None:
        c = self.c
        self.step = "the second release"
        c.show.section("4 · A second release, and production breaks before it ships")
        await c.machoke.send(
            c.handoffs,
            handoff(
                "search",
                "building",
                "title: Task search",
                f"branch: {BRANCHES['search'][0]}",
                "depends-on: core",
            ),
        )
        await c.machoke.send(c.handoffs, handoff("search", "submitted", note="Search is in."))
        request = self.review_of("search")
        await c.carl.react(request, "✅")
        await c.alex.react(request, "✅")
        await self.expect_state("search", TaskState.REVIEWED)
        await self.slash(c.olga, "release open", name="hotfix")
        slug = await self.active_slug()
        await self.slash(c.olga, "release add", task="search")
        await self.slash(c.olga, "release assemble")

        c.show.narrate("💥 production breaks: /signin loses its password form, /tasks answers 500")
        c.app.break_signin()
        c.app.set_status("/tasks", 500)
        await self.slash(c.olga, "release ship")
        said = [m.content for m in self.thread(slug).history()]
        if not said or RED_PREFIX not in said[0]:
            raise DemoFailure(f"{self.step}: the seal of {slug} was not red: {said[:1]}")
        ping = said[-1]
        if f"<@{c.olga.id}>" not in ping or "git revert -m 1" not in ping:
            raise DemoFailure(f"{self.step}: no rollback ping for olga in the thread of {slug}")

        c.show.section("5 · olga fixes production and re-seals")
        c.show.narrate("olga rolls production forward with a fix (the sample app heals)")
        c.app.heal()
        await self.slash(c.olga, "seal")
        last = self.thread(slug).history()[-1].content
        if GREEN_LINE not in last:
            raise DemoFailure(f"{self.step}: the re-seal of {slug} was not green: {last!r}")

    async def play(self) -> None:
        await self.handoffs()
        await self.reviews()
        await self.first_release()
        await self.second_release()


# -- running it ------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """The bot's own warnings go to stderr, one line each, without tracebacks' noise on
    stdout; nothing is configured when the caller already set logging up."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("log: %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)


async def play(console: Console, keep: Path | None = None) -> float:
    """Play the whole script; returns its wall time in seconds. Raises :class:`DemoFailure`.
    ``keep``: where its database is saved once it has played (a SQLite file)."""
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="conductor-demo-") as tmp,
        serve_in_thread(SampleApp(version_file=production(Path(tmp)) / "VERSION")) as app,
    ):
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        database = Database(url)
        await database.create_all()
        repo = DemoRepo(Path(tmp) / "git")
        settings = demo_settings(url, app.url, repo, production(Path(tmp)) / "VERSION")
        without_voice_warnings()
        bot = create_bot(settings, database=database, smoke_runner=PlaywrightRunner())
        env = simcord.Env(bot, settle_timeout=SETTLE_SECONDS)
        env.backend.edit_bot_profile("Conductor")
        show = Transcript(console)
        env.backend.subscribers.append(show)
        console.print(
            Text.assemble(
                ("Conductor demo", "bold"),
                (
                    " — the real bot against simcord (a local stand-in for Discord), sealing "
                    f"a sample production app at {app.url} in real Chromium",
                    "",
                ),
            )
        )
        script: Script | None = None
        try:
            await env.start()
            with env.time_context():
                if bot.user is None:
                    raise DemoFailure("the bot did not log in to simcord")
                show.user(bot.user.id, "Conductor", "conductor")
                cast = build_world(env, bot, show, app, repo)
                await env.settle()
                script = Script(cast)
                async with asyncio.timeout(DEADLINE_SECONDS):
                    await script.play()
                show.flush()
        except TimeoutError:
            step = script.step if script is not None else "starting"
            raise DemoFailure(
                f"the demo did not finish within {DEADLINE_SECONDS:.0f} s (stuck in {step})"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await env.shutdown()
            await bot.close()
        errors = env.errors_since(script.acknowledged if script is not None else 0)
        if errors:
            first = errors[0]
            raise DemoFailure(
                f"the bot raised {len(errors)} error(s); the first: {type(first).__name__}: {first}"
            )
        if keep is not None:
            await database.dispose()
            await asyncio.to_thread(_save, Path(tmp) / "demo.db", keep)
    return time.perf_counter() - started


def _save(database: Path, to: Path) -> None:
    """A consistent copy of the SQLite file ``database`` at ``to`` (its WAL folded in)."""
    to.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(database)) as source:
        source.execute(f"VACUUM INTO '{str(to).replace(chr(39), chr(39) * 2)}'")


def main(console: Console | None = None, keep: Path | None = None) -> int:
    """Run the demo; 0 when the whole story played, 1 when a step failed, 2 when something
    the demo needs is missing. Prints its wall time."""
    out = console or Console(highlight=False, soft_wrap=True, emoji=False)
    problem = chromium_problem(default_chromium())
    if problem is not None:
        _error(
            f"error: {problem}; install Debian's Chromium "
            "(apt-get install chromium-headless-shell) or run `make demo`"
        )
        return 2
    if shutil.which("git") is None:
        _error("error: the demo assembles and ships with git, which is missing: install git")
        return 2
    if (sandboxed := asyncio.run(Sandbox().probe())) is not None:
        _error(f"error: the demo runs its test and deploy commands in the sandbox: {sandboxed}")
        return 2
    started = time.perf_counter()
    try:
        with _quiet_logs():
            asyncio.run(play(out, keep))
    except DemoFailure as failure:
        _error(f"error: demo failed: {' '.join(str(failure).split())}")
        return 1
    except Exception as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        _error(f"error: demo failed unexpectedly: {type(error).__name__}: {reason}")
        return 1
    total = time.perf_counter() - started
    out.print()
    out.print(
        Text(
            f"✔ Demo finished in {total:.1f} s: two releases shipped; the first sealed green, "
            "the second red (olga pinged with the rollback), then re-sealed green.",
            style="bold green",
        )
    )
    return 0


def _error(line: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True, emoji=False).print(
        Text(line, style="bold red")
    )
