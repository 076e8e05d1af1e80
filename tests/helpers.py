"""Builders shared by the whole suite: the guild and people of the domain tests, handoff
messages, the ``[app]`` table and the fake smoke runner, the simcord world of the cog tests,
and the sample app's suite. Fixtures live in the conftest files; what they share lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pytest
import simcord
from aiohttp import web
from sqlalchemy import Connection, create_engine, event
from sqlalchemy import text as sql_text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from bot.sample import GUILD_ID, sample_settings
from conductor.machines import Move, ReleaseFlow, TaskFlow
from conductor.queries import release_members, require_release
from conductor.releases.git import IDENTITY
from conductor.releases.runs.driver import Plan, RunOutcome, RunRequest
from conductor.releases.runs.sink import AlertAction, PostedNotes
from conductor.releases.runs.store import Runs, RunView
from conductor.seals.evidence import Attachment
from conductor.states import AuthorKind, ReleaseState, RunKind, RunStatus, StepStatus
from conductor.views import Actor, IncomingMessage, Reactor, ReleaseView
from smoke import AppConfig, CheckResult, SmokeResult, parse_app_config
from smoke.protocol import OnCheck, SmokeRunner
from smoke.sample_app import sample_app_table
from smoke.screenshots import PNG_SIGNATURE
from store.db import Database

if TYPE_CHECKING:
    from bot.client import ConductorBot
    from conductor.bootstrap import Conductor
    from conductor.handoffs.apply import Handoffs
    from conductor.reminders import Clock
    from conductor.reviews.service import Reviews

# -- the domain tests: a guild, an operator, an agent, reviewers -----------------------------

GUILD = 1001
OPERATOR = Actor("olga", 501)
AGENT_ID = 900
REVIEWERS = [Reactor(601, "carl"), Reactor(602, "alex"), Reactor(603, "avi")]

_message_ids = count(10_000)


def next_message_id() -> int:
    return next(_message_ids)


def handoff(
    text: str,
    *,
    author_id: int = AGENT_ID,
    author: str = "machoke",
    kind: AuthorKind = "bot",
    message_id: int | None = None,
    guild_id: int = GUILD,
) -> IncomingMessage:
    return IncomingMessage(
        guild_id=guild_id,
        channel_id=42,
        message_id=message_id if message_id is not None else next_message_id(),
        author_id=author_id,
        author_name=author,
        author_kind=kind,
        text=text,
    )


def submitting(slug: str, *, depends_on: str | None = None) -> str:
    """A handoff that submits ``slug`` (title and branch from the slug)."""
    text = f"handoff {slug} → submitted\ntitle: {slug.title()}\nbranch: feat/{slug}"
    if depends_on is not None:
        text += f"\ndepends-on: {depends_on}"
    return text


MakeReviewed = Callable[..., Awaitable[None]]


class Services(Protocol):
    """What brings a task to reviewed: the domain built by ``bootstrap``, or the bot."""

    @property
    def handoffs(self) -> Handoffs: ...

    @property
    def reviews(self) -> Reviews: ...


async def bring_to_reviewed(
    services: Services,
    slug: str,
    *,
    depends_on: str | None = None,
    guild_id: int = GUILD,
    reviewers: Sequence[Reactor] = REVIEWERS[:2],
) -> None:
    """Bring a task to reviewed through the real paths: a submitting handoff and two ✅."""
    text = submitting(slug, depends_on=depends_on)
    result = await services.handoffs.apply(handoff(text, guild_id=guild_id))
    assert result.review is not None, result
    message_id = next_message_id()
    await services.reviews.attach_message(result.review.request_id, 77, message_id)
    for reviewer in reviewers:
        await services.reviews.record_approval(guild_id, message_id, reviewer)


async def assembled(domain: Conductor, make_reviewed: MakeReviewed, name: str = "t") -> str:
    """An assembled release ``name`` with one reviewed member, ``<name>-core``; its slug."""
    await make_reviewed(f"{name}-core")
    view = await domain.releases.open(GUILD, name, OPERATOR)
    await domain.releases.add_task(GUILD, f"{name}-core", OPERATOR)
    await domain.releases.assemble(GUILD, OPERATOR)
    return view.slug


async def roll_back_by_machine(
    db: Database,
    slug: str,
    actor: Actor = OPERATOR,
    *,
    reason: str = "red seal",
    guild_id: int = GUILD,
) -> None:
    """A shipped release rolled back as the state machine moves it (the release to
    rolled_back, its members to reviewed), without the rollback pipeline: what the held train,
    the history and the board see after a rollback."""
    async with db.write() as session:
        release = await require_release(session, guild_id, slug)
        members = await release_members(session, release)
        move = Move(actor=actor.label, actor_id=actor.id)
        await ReleaseFlow(release, member_count=len(members)).fire("roll_back", move)
        release.rollback_reason = reason
        await TaskFlow.move_all(members, "roll_back", move, session)


# -- runs: a ship, a rollback, a redeploy, as an operator starts them ------------------------


async def ship(
    domain: Conductor, actor: Actor = OPERATOR, *, release_slug: str | None = None, **drive: Any
) -> RunOutcome:
    """Ship the guild's assembled release (``drive``: ``progress``, ``reply_to``)."""
    request = RunRequest(release_slug)
    return await domain.runs.start(RunKind.SHIP, GUILD, actor, request=request, **drive)


async def roll_back(
    domain: Conductor,
    actor: Actor = OPERATOR,
    *,
    release_slug: str | None = None,
    reason: str | None = None,
    **drive: Any,
) -> RunOutcome:
    """Roll production back from ``release_slug`` (None: the last shipped release)."""
    request = RunRequest(release_slug, reason)
    return await domain.runs.start(RunKind.ROLLBACK, GUILD, actor, request=request, **drive)


async def redeploy(
    domain: Conductor, actor: Actor = OPERATOR, *, reason: str | None = None, **drive: Any
) -> RunOutcome:
    """Deploy again what production runs."""
    request = RunRequest(reason=reason)
    return await domain.runs.start(RunKind.REDEPLOY, GUILD, actor, request=request, **drive)


async def open_run(
    domain: Conductor,
    kind: RunKind,
    release_slug: str,
    *,
    runs: Runs | None = None,
    actor: Actor = OPERATOR,
    guild_id: int = GUILD,
    restores_version: int | None = None,
    reason: str | None = None,
) -> RunView:
    """A run of ``kind`` opened, as its process does once admitted, and never driven (a run in
    flight, or one whose process died: ``runs`` with a lease already out)."""
    store = runs or domain.runs.runs
    async with domain.db.write() as session:
        row = await require_release(session, guild_id, release_slug)
        steps = domain.runs.kind(kind).steps
        return await store.open(
            session,
            row,
            kind,
            steps,
            version=row.version or 1,
            actor=actor,
            restores_version=restores_version,
            reason=reason,
        )


async def end_run(domain: Conductor, run: RunView, *, runs: Runs | None = None) -> None:
    """End ``run`` as failed at its first step, its notice told: over, owing nothing."""
    store = runs or domain.runs.runs
    await store.mark(
        run.id, run.steps[0].name, StepStatus.FAILED, end=RunStatus.FAILED, error="stopped"
    )
    await store.told(run.id)


async def plan_rollback(
    domain: Conductor, release_slug: str | None = None, actor: Actor = OPERATOR
) -> Plan:
    """What a rollback would do, or its refusal (read-only)."""
    return await domain.runs.plan(RunKind.ROLLBACK, GUILD, actor, RunRequest(release_slug))


#: builds the domain of the runs' tests (``tests/conductor/releases/conftest.py``)
Build = Callable[..., "Conductor"]
#: what a ship's deploy command finds in its environment (a rollback adds ROLLBACK_OF)
DEPLOY_KEYS = ("CONDUCTOR_RELEASE", "CONDUCTOR_VERSION", "CONDUCTOR_SHA")


def outbox(root: Path) -> Path:
    """A directory a sandboxed command may write (granted it: ``"write": [outbox]``): open to
    the sandbox's user (``nobody`` when the tests run as root)."""
    box = root / "outbox"
    box.mkdir(exist_ok=True)
    box.chmod(0o777)
    for parent in box.parents:  # pytest's directories are 0700: let it find the way in
        if parent == Path(parent.anchor) or parent.stat().st_mode & 0o001:
            break
        parent.chmod(parent.stat().st_mode | 0o001)
    return box


async def gone(token: str, *, within: float = 60.0) -> bool:
    """Whether no process whose command line holds ``token`` is left (waiting up to
    ``within`` seconds for them to be reaped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if not processes_holding(token):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)


def processes_holding(token: str) -> list[int]:
    """The live (not zombie) processes whose command line holds ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def deploy_command(seen: Path, then: str = "true", *, keys: Sequence[str] = DEPLOY_KEYS) -> str:
    """A deploy command that writes down ``keys`` of its environment (a JSON line in
    ``seen``), then runs ``then``."""
    wanted = json.dumps(list(keys))
    record = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {wanted}}}))"
    return f"echo deploying; python3 -c '{record}' >> {seen}; {then}"


def deploys(seen: Path) -> list[dict[str, str | None]]:
    """What each deploy saw, in order."""
    if not seen.exists():
        return []
    return [json.loads(line) for line in seen.read_text().splitlines()]


# -- the smoke seal: the [app] table and a runner that answers what the test says -------------

#: the [app] table the tests configure; production is never reached by the fake
TEST_APP: dict[str, Any] = {
    "name": "studio",
    "production_url": "http://127.0.0.1:9",
    "health_path": "/up",
    "rollback_command": "git revert -m 1 {merge_sha} && bin/deploy {release} {version}",
    "smoke": [
        {"path": "/", "expect_text": "Studio"},
        {"path": "/signin", "selector": "form input[type=password]"},
        {"path": "/tasks", "selector": "ul.tasks li"},
        {"path": "/tasks", "expect_text": "Tasks"},
        {"path": "/devops", "expect_status": 404},
    ],
}


def green(app: AppConfig) -> SmokeResult:
    checks = [CheckResult(app.health_path, True, kind="health", status=200)]
    checks += [CheckResult(c.path, True, status=c.expect_status) for c in app.smoke]
    return SmokeResult.from_checks(tuple(checks), 1234)


def red(app: AppConfig, failures: dict[str, str]) -> SmokeResult:
    """``failures``: path → reason; the health path fails too when named."""
    paths = [app.health_path, *(c.path for c in app.smoke)]
    checks = [
        CheckResult(
            p, p not in failures, kind="health" if i == 0 else "page", reason=failures.get(p)
        )
        for i, p in enumerate(paths)
    ]
    return SmokeResult.from_checks(tuple(checks), 2345)


class FakeRunner:
    """Green unless told otherwise. ``gate`` holds a run until set (concurrency tests)."""

    def __init__(self) -> None:
        self.calls: list[AppConfig] = []
        self.queued: deque[SmokeResult | Exception | dict[str, str]] = deque()
        self.gate: asyncio.Event | None = None
        #: set as soon as a run starts
        self.started = asyncio.Event()

    def then(self, outcome: SmokeResult | Exception | dict[str, str]) -> None:
        """The next run returns this result, raises this exception, or fails these paths."""
        self.queued.append(outcome)

    async def run(self, app: AppConfig, *, on_check: OnCheck | None = None) -> SmokeResult:
        self.calls.append(app)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        outcome = self.queued.popleft() if self.queued else None
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, SmokeResult):
            return outcome
        if isinstance(outcome, dict):
            return red(app, outcome)
        return green(app)


#: the timeout of a smoke check that waits in vain (for a selector or a text its page lacks), in
#: seconds: the page must have loaded within it for the check to fail for that reason and not
#: time out, and each such check costs the test this long. A local page's check took at most
#: 1.4 s with three Chromium runs and two CPU hogs on two cores (median 0.7 s).
IN_VAIN = 5.0


def suite(url: str, **overrides: Any) -> AppConfig:
    """The sample app's ``[app]`` table at ``url``, validated, with ``overrides``."""
    return parse_app_config(sample_app_table(url, **overrides))


# -- screenshots: real PNG bytes, built and read without a browser ----------------------------


def png(width: int = 4, height: int = 3, *, pad: int = 0) -> bytes:
    """A valid grey PNG of ``width`` × ``height``; ``pad`` bytes of an ancillary chunk make it
    as large as a test needs (size limits) without a browser."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    extra = chunk(b"teXt", b"pad\x00" + b"x" * pad) if pad else b""
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


#: bytes per pixel of an 8-bit PNG, by colour type (grey, RGB, grey + alpha, RGBA)
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, once the whole file is read as a PNG: the
    signature, every chunk's CRC, and the image data inflating to exactly the rows the header
    promises (8-bit, non-interlaced). Fails on anything else."""
    assert data[:8] == PNG_SIGNATURE, data[:16]
    chunks: list[tuple[bytes, bytes]] = []
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", [k for k, _ in chunks]
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, interlace) == (8, 0) and colour in _PNG_CHANNELS, chunks[0][1]
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + width * _PNG_CHANNELS[colour])
    return width, height


def red_with_screenshots(paths: Sequence[str], *, pad: int = 0) -> SmokeResult:
    """Red as the real runner reports it: the health check passes, and each of ``paths``
    fails with a screenshot of its own (a small PNG ``pad`` bytes larger, each a different
    height so no two are equal)."""
    checks = [CheckResult("/up", True, kind="health", status=200)]
    checks += [
        CheckResult(path, False, status=500, reason="status 500", screenshot=png(8, 6 + i, pad=pad))
        for i, path in enumerate(paths)
    ]
    return SmokeResult.from_checks(tuple(checks), 3456)


# -- the cog tests: the simcord world -------------------------------------------------------


@dataclass
class World:
    env: simcord.Env
    bot: ConductorBot
    guild: Any
    general: Any
    notes: Any
    olga: Any  # an operator
    bob: Any  # a member without the operator role
    handoffs: Any = None
    reviews: Any = None
    deployments: Any = None
    operators: Any = None  # the operator role

    @property
    def runner(self) -> FakeRunner:
        runner = self.bot.sealer.runner
        assert isinstance(runner, FakeRunner)
        return runner

    @property
    def bot_id(self) -> int:
        assert self.bot.user is not None
        return self.bot.user.id


#: the cog tests' reviewers (named so in the task card)
BOT_REVIEWERS = [Reactor(601, "r601"), Reactor(602, "r602")]


async def reviewed(bot: ConductorBot, slug: str, *, depends_on: str | None = None) -> None:
    """A task of the cog tests' guild brought to reviewed through the domain (the handoff and
    review cogs are tested on their own)."""
    await bring_to_reviewed(
        bot, slug, depends_on=depends_on, guild_id=GUILD_ID, reviewers=BOT_REVIEWERS
    )


def refused(env: simcord.Env, result: Any, text: str) -> None:
    """The command was refused with an ephemeral answer containing ``text``, and the refusal
    is the one simcord recorded (so nothing else went wrong)."""
    assert result.ephemeral, result
    assert result.response is not None and text in result.response.content, result.response
    simcord.assert_error(env, contains=text)


@contextlib.asynccontextmanager
async def make_bot(
    root: Path,
    *,
    app: Mapping[str, Any] | None = TEST_APP,
    clone: Path | None = None,
    tests: str | None = None,
    deploy: str | None = None,
    runner: Callable[[], SmokeRunner] | None = FakeRunner,
    busy_timeout_ms: int | None = None,
    clock: Clock | None = None,
    url: str | None = None,
    **settings: Any,
) -> AsyncIterator[ConductorBot]:
    """What a ``simcord_bot`` fixture yields: a fresh, unstarted bot of the sample guild on its
    own SQLite file (``root/bot.db``; ``url``: another empty database, e.g. PostgreSQL's),
    closed on the way out.

    - ``app``: the ``[app]`` table it seals against (None: unsealed);
    - ``clone``: Conductor's clone of the origin (``[git]``), with ``tests`` as its test
      command (60 s) when given;
    - ``deploy``: the deploy command; production is then a ``HealthServer`` on 127.0.0.1 (the
      ``[app]`` table's production URL), checked every 50 ms for 5 s, the logs in
      ``root/logs``; it may write :func:`outbox` ``(root)``;
    - ``runner``: makes the smoke runner (a fresh ``FakeRunner``; None: the bot's own,
      Playwright in Chromium);
    - ``busy_timeout_ms``: how long a write waits for a lock another process holds (None: the
      database's default, 10 s);
    - ``clock``: the reminders' sense of time (None: the database's clock);
    - ``settings``: any other setting, as ``sample_settings`` takes it.
    """
    # imported here: the domain tests and the crash worker import this module and need no bot
    from bot.client import create_bot  # noqa: PLC0415

    url = url or f"sqlite+aiosqlite:///{root / 'bot.db'}"
    database = (
        Database(url) if busy_timeout_ms is None else Database(url, busy_timeout_ms=busy_timeout_ms)
    )
    await database.create_all()
    table = None if app is None else dict(app)
    async with contextlib.AsyncExitStack() as stack:
        if clone is not None:
            tested = {} if tests is None else {"test_command": tests, "test_timeout": 60}
            settings["git"] = {"path": str(clone), **tested}
        if deploy is not None:
            health = await stack.enter_async_context(HealthServer())
            if table is not None:
                table["production_url"] = health.url
            settings["deploy"] = {
                "command": deploy,
                "health_timeout": 5,
                "health_interval": 0.05,
                "log_dir": str(root / "logs"),
                "write": [str(outbox(root))],  # what the sandboxed deploy may leave for the test
            }
        bot = create_bot(
            sample_settings(url, app=table, **settings),
            database=database,
            smoke_runner=None if runner is None else runner(),
            clock=clock,
        )
        try:
            yield bot
        finally:
            await bot.close()


async def release_by_commands(
    world: World,
    origin: Origin | None = None,
    *,
    name: str = "train",
    tasks: Sequence[str] = ("core",),
    depends_on: Mapping[str, str] | None = None,
    until: Literal["assembling", "assembled", "shipped"] = "assembled",
    seal: dict[str, str] | None = None,
    already_open: bool = False,
    over_held: bool = False,
) -> str:
    """A release of the cog tests' guild brought to ``until`` by an operator (olga) through
    the slash commands; its slug. Each of ``tasks`` is brought to reviewed (through the
    domain; ``depends_on``: task → the task it depends on), its branch ``feat/<task>`` first
    pushed to ``origin`` when given; the release ``name`` is opened (unless ``already_open``,
    e.g. confirmed over a held train) and the tasks added, in order:

    - ``assembling``: no more (tasks may be empty);
    - ``assembled``: ``/release assemble`` says it is assembled;
    - ``shipped``: then ``/release ship``, its seal red with ``seal``'s failures (else green):
      the progress says it shipped and links its notes, and it is the last shipped release.

    ``over_held``: an open the held train asks about is asked again and confirmed with "Open
    anyway" (where the test is not about the held train)."""
    for task in tasks:
        if origin is not None:
            origin.commit(f"feat/{task}", {f"{task}.txt": f"{task}\n"})
        await reviewed(world.bot, task, depends_on=(depends_on or {}).get(task))
    if not already_open:
        await world.olga.slash(world.general, "release open", name=name)
        status = await world.bot.releases.status(GUILD_ID)
        if over_held and status.active is None:  # the train is held: confirm over it
            asked = await world.olga.slash(world.general, "release open", name=name)
            await world.olga.click(asked.response, label="Open anyway")
    for task in tasks:
        await world.olga.slash(world.general, "release add", task=task)
    if until != "assembling":
        assembled = await world.olga.slash(world.general, "release assemble")
        assert "is assembled." in assembled.response.content, assembled.response.content
    active = (await world.bot.releases.status(GUILD_ID)).active
    assert active is not None
    slug = active.slug
    if until == "shipped":
        if seal is not None:
            world.runner.then(seal)
        shipped = await world.olga.slash(world.general, "release ship")
        progress = shipped.response.content
        assert f"`{slug}`" in progress and "— shipped" in progress, progress
        assert "📝 notes: https://discord.com/channels/" in progress, progress
        assert (await world.bot.releases.get(GUILD_ID, slug)).state is ReleaseState.SHIPPED
        last = (await world.bot.releases.status(GUILD_ID)).last_shipped
        assert last is not None and last.slug == slug
    return slug


def held_for(said: str, since: datetime, before: datetime, after: datetime) -> str:
    """How long a refusal ``said`` the lock had been held (``3 min``), checked against the
    wall clock: the minutes since ``since`` at some moment between ``before`` and ``after`` (the
    refusal's start and end). ``0 min`` on a quick machine, and right however slow it is."""
    [minutes] = re.findall(r"\((\d+) min ago\)", said)
    low, high = (int((at - since).total_seconds() // 60) for at in (before, after))
    assert low <= int(minutes) <= high, (said, low, high)
    return f"{minutes} min"


# -- the command line in a subprocess -------------------------------------------------------


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any ``CONDUCTOR_*`` variable, ``HOME`` at ``home``,
    then ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONDUCTOR_")}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run_conductor(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``conductor ARGS`` in ``cwd``: the installed console script next to this interpreter
    (what ``make`` runs), else ``python -m cli``. ``env`` defaults to a clean one whose config
    file is the one in ``cwd`` (none there unless the test writes it)."""
    script = Path(sys.executable).with_name("conductor")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "cli"]
    if env is None:
        env = clean_env(cwd)
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [*command, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


#: the checkout's root
ROOT = Path(__file__).resolve().parents[1]


def run_python(
    script: str,
    *,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``script`` run by this interpreter in a process of its own (``python -c``), in ``cwd``
    (the checkout's root: it imports this checkout), its output as text: what a fresh
    process imports, prints or leaves behind."""
    return subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


# -- git: a bare origin the agents push to ---------------------------------------------------

GIT = shutil.which("git") or "git"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - git, fixed arguments
        [GIT, *args], cwd=cwd, check=True, capture_output=True, text=True,
        env={**os.environ, **IDENTITY},
    )  # fmt: skip
    return done.stdout.strip()


class Origin:
    """A bare origin with ``main``, and an agent's checkout that pushes branches to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "origin.git"
        self.agent = root / "agent"
        git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        git(root, "clone", "--quiet", str(self.bare), str(self.agent))
        self.commit("main", {"README": "studio\n", "app.txt": "v0\n"}, new=False, first=True)

    def commit(
        self,
        branch: str,
        files: Mapping[str, str],
        *,
        new: bool = True,
        first: bool = False,
        message: str | None = None,
    ) -> str:
        if not first:
            git(self.agent, "checkout", "--quiet", "main")
        if new:
            git(self.agent, "checkout", "--quiet", "-B", branch)
        for name, text in files.items():
            path = self.agent / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.agent, "add", "--all")
        git(self.agent, "commit", "--quiet", "-m", message or f"work on {branch}")
        git(self.agent, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")
        return git(self.agent, "rev-parse", "HEAD")

    def hotfix(self, files: Mapping[str, str], message: str) -> str:
        """A commit pushed onto main by hand, on top of what main is on the origin now (the
        releases shipped since the agent last looked included)."""
        git(self.agent, "fetch", "--quiet", "origin")
        git(self.agent, "checkout", "--quiet", "-B", "main", "origin/main")
        return self.commit("main", files, new=False, message=message)


# -- the notes: a sink that keeps what it was asked to post -------------------------------------

ROLE = "<@&77>"


@dataclass
class FakeNotes:
    """A NotesSink that keeps what it was asked to post; ``down`` makes every post fail."""

    down: bool = False
    posts: list[tuple[str, list[str], object]] = field(default_factory=list)
    pings: list[tuple[PostedNotes, str]] = field(default_factory=list)
    #: the files of each ping, in the order of ``pings``
    attached: list[tuple[Attachment, ...]] = field(default_factory=list)
    #: the action offered on each ping (the Roll back button), in the order of ``pings``
    actions: list[AlertAction | None] = field(default_factory=list)
    changes: int = 0
    looked_for: list[str] = field(default_factory=list)
    _ids: int = 5000

    async def post(
        self,
        guild_id: int,
        release: ReleaseView,
        messages: Sequence[str],
        *,
        reply_to: object | None = None,
    ) -> PostedNotes | None:
        if self.down:
            return None
        self._ids += 1
        self.posts.append((release.slug, list(messages), reply_to))
        return PostedNotes(self._ids, f"https://chat/{self._ids}", f"thread-of-{release.slug}")

    async def find(self, guild_id: int, release: ReleaseView, marker: str) -> PostedNotes | None:
        self.looked_for.append(marker)
        for number, (slug, messages, _) in enumerate(self.posts, start=5001):
            if slug == release.slug and marker in messages[0]:
                return PostedNotes(number, f"https://chat/{number}", f"thread-of-{slug}")
        for posted, text in self.pings:
            if marker in text:
                return posted
        return None

    async def mentions(self, guild_id: int, user_id: int | None) -> list[str]:
        return ([f"<@{user_id}>"] if user_id is not None else []) + [ROLE]

    async def ping(
        self,
        guild_id: int,
        posted: PostedNotes,
        text: str,
        *,
        user_id: int | None,
        attachments: Sequence[Attachment] = (),
        action: AlertAction | None = None,
    ) -> None:
        self.pings.append((posted, text))
        self.attached.append(tuple(attachments))
        self.actions.append(action)

    def changed(self, guild_id: int) -> None:
        self.changes += 1


# -- production's health URL, answering what the test says -------------------------------------


class HealthServer:
    """``/up`` on 127.0.0.1, answering the statuses queued (then ``then``, 200 by default),
    counting the checks."""

    def __init__(self) -> None:
        self.queue: list[int] = []
        self.then = 200
        self.checks = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _up(self, request: web.Request) -> web.Response:
        self.checks += 1
        status = self.queue.pop(0) if self.queue else self.then
        return web.Response(status=status, text="ok" if status == 200 else "down")

    async def __aenter__(self) -> HealthServer:
        app = web.Application()
        app.router.add_get("/up", self._up)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# -- memory: how far the process's resident size rose --------------------------------------------

#: how much a bounded read may grow the process's memory (the issue's bound)
MEMORY_BOUND = 20 * 1024 * 1024


class MemoryPeak:
    """For a ``with`` block: the most the process's resident memory rose in it (:attr:`growth`,
    in bytes), from the kernel's high-water mark, reset on the way in (a body read whole and
    freed again before the end of the block would not show in the resident size after it)."""

    def __init__(self) -> None:
        self.before = 0
        self.growth = 0

    def __enter__(self) -> MemoryPeak:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM back to the present RSS
        self.before = _resident("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.growth = _resident("VmHWM") - self.before

    @property
    def mib(self) -> str:
        return f"{self.growth / 2**20:+.1f} MiB"


def _resident(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


# -- engines racing on one SQLite file ------------------------------------------------------

#: how long each engine of a race on one SQLite file (as separate processes would be) waits for
#: another's write lock, in ms: an outer bound, the lock is taken as soon as it is free. Fifty
#: engines queue in turn for it, a few seconds on a loaded machine, near the product's 10 s.
RACE_BUSY_TIMEOUT_MS = 120_000


# -- a database that cannot take writes: real faults on a real SQLite file -------------------


#: what SQLite and PostgreSQL each say of a unique index or a CHECK refusing a row
UNIQUE_VIOLATION = r"UNIQUE constraint failed|violates unique constraint"
CHECK_VIOLATION = r"CHECK constraint failed|violates check constraint"


def sync_url(url: str | URL) -> str:
    """The same database through a synchronous driver (SQLite's own, psycopg for
    PostgreSQL): for a test that acts as another process, or inspects the schema."""
    parsed = make_url(url)
    driver = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def write_aside(db: Database, sql: str, params: Mapping[str, Any] | None = None) -> None:
    """Run ``sql`` (``:name`` parameters) on the test's database through a connection of its
    own and commit it, as another process would, whichever the backend; synchronous, so a
    checkpoint can call it."""
    engine = create_engine(sync_url(db.url))
    try:
        with engine.begin() as conn:
            conn.execute(sql_text(sql), dict(params or {}))
    finally:
        engine.dispose()


Fault = Literal["busy", "full", "read-only", "deleted", "replaced"]
FAULTS: tuple[Fault, ...] = ("busy", "full", "read-only", "deleted", "replaced")


class DatabaseFault:
    """A real fault on a ``Database``'s SQLite file, on and off (we run as root, so file modes
    stop nothing):

    - ``busy``: another connection holds the write lock (``BEGIN IMMEDIATE``) on the file;
    - ``full``: ``PRAGMA max_page_count`` at the current size on every connection as it is
      checked out: SQLite's own SQLITE_FULL for any write that needs a new page;
    - ``read-only``: ``PRAGMA query_only`` on every connection as it is checked out:
      SQLITE_READONLY, "attempt to write a readonly database";
    - ``deleted``: the file unlinked (a hard link keeps its data aside, to put back);
    - ``replaced``: another SQLite file moved into its place (the original kept aside).

    On PostgreSQL, ``busy`` and ``read-only`` (the others are about a file):

    - ``busy``: another connection holds the write lock (the advisory lock every write unit
      takes first, ``store.db.WRITE_LOCK_KEY``), so a write waits its ``lock_timeout`` out;
    - ``read-only``: the database made read-only (``default_transaction_read_only``, as a
      standby is) for every connection, the ones open dropped so that they reconnect into it.
    """

    def __init__(self, database: Database) -> None:
        self.kind: Fault | None = None
        self.postgres: str | None = None
        if database.is_postgresql:
            self.postgres = sync_url(database.url)
            self._pg_holder: Connection | None = None
            return
        assert database.path is not None, "a file-backed SQLite database"
        self.path = Path(database.path)
        self.aside = self.path.with_name(self.path.name + ".aside")
        self._holder: sqlite3.Connection | None = None
        self._pages_limit: int | None = None
        event.listen(database.engine.sync_engine, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if self._pages_limit is None:
                cursor.execute("PRAGMA max_page_count")
                (self._pages_limit,) = cursor.fetchone()
            cursor.execute(f"PRAGMA query_only = {int(self.kind == 'read-only')}")
            limit = self._pages_limit
            if self.kind == "full":
                cursor.execute("PRAGMA page_count")
                (limit,) = cursor.fetchone()
            cursor.execute(f"PRAGMA max_page_count = {limit}")
        finally:
            cursor.close()

    def _pg_read_only(self, on: bool) -> None:
        assert self.postgres is not None
        url = make_url(self.postgres)
        name = url.database
        # from the cluster's own database: a read-only one cannot be made writable from inside
        engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                setting = "SET default_transaction_read_only = on" if on else "RESET ALL"
                conn.execute(sql_text(f'ALTER DATABASE "{name}" {setting}'))
                conn.execute(
                    sql_text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
        finally:
            engine.dispose()

    def _pg_start(self, kind: Fault) -> None:
        assert self.postgres is not None
        if kind == "busy":
            from store.db import WRITE_LOCK_KEY  # noqa: PLC0415

            engine = create_engine(self.postgres, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            self._pg_holder = engine.connect()
            self._pg_holder.execute(
                sql_text("SELECT pg_advisory_lock(:key)"), {"key": WRITE_LOCK_KEY}
            )
        elif kind == "read-only":
            self._pg_read_only(True)
        else:
            raise AssertionError(f"{kind}: a fault of a SQLite file")

    def start(self, kind: Fault) -> None:
        assert self.kind is None, f"already {self.kind}"
        self.kind = kind
        if self.postgres is not None:
            self._pg_start(kind)
            return
        if kind == "busy":
            self._holder = sqlite3.connect(self.path, isolation_level=None, timeout=0)
            self._holder.execute("BEGIN IMMEDIATE")
        elif kind == "deleted":
            os.link(self.path, self.aside)
            os.unlink(self.path)
        elif kind == "replaced":
            os.link(self.path, self.aside)
            other = self.path.with_name("other.db")
            with contextlib.closing(sqlite3.connect(other)) as conn:
                conn.execute("CREATE TABLE other (x INTEGER)")
                conn.execute("INSERT INTO other VALUES (1)")
                conn.commit()
            os.replace(other, self.path)

    def stop(self) -> None:
        """The fault is over: the lock released, the pragmas lifted, the file put back."""
        if self.postgres is not None:
            if self.kind == "busy" and self._pg_holder is not None:
                self._pg_holder.close()
                self._pg_holder = None
            elif self.kind == "read-only":
                self._pg_read_only(False)
            self.kind = None
            return
        if self.kind == "busy" and self._holder is not None:
            self._holder.rollback()
            self._holder.close()
            self._holder = None
        elif self.kind == "deleted":
            os.link(self.aside, self.path)
            os.unlink(self.aside)
        elif self.kind == "replaced":
            os.replace(self.aside, self.path)
        self.kind = None


@contextlib.contextmanager
def small_disk(where: Path, size: str = "8m") -> Iterator[Callable[[bool], None]]:
    """A small tmpfs mounted at ``where`` (skips when this process may not mount). Yields
    ``fill(full)``: True fills the disk to the last byte with a file, False removes it."""
    where.mkdir(parents=True, exist_ok=True)
    mount, umount = shutil.which("mount") or "mount", shutil.which("umount") or "umount"
    mounted = subprocess.run(  # noqa: S603 - mount, fixed arguments
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for a full disk: {mounted.stderr.strip()}")
    filler = where / "filler"

    def fill(full: bool) -> None:
        if not full:
            filler.unlink(missing_ok=True)
            return
        out = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for chunk in (65536, 1):  # then the last few bytes
                with contextlib.suppress(OSError):
                    while os.write(out, b"\0" * chunk):
                        pass
        finally:
            os.close(out)

    try:
        yield fill
    finally:
        filler.unlink(missing_ok=True)
        subprocess.run([umount, "-l", str(where)], check=False)  # noqa: S603 - fixed arguments


def examples(full: int) -> int:
    """How many examples a property test draws: a tenth of ``full`` (at least 100) in
    ``make test``, all of them with ``CONDUCTOR_FUZZ=1`` (``make fuzz``)."""
    return full if os.environ.get("CONDUCTOR_FUZZ") else max(100, full // 10)
