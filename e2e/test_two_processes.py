"""Two processes at once: two real bot processes, unsharded (they take no shard lease), on
one PostgreSQL database and both connected to the stand-in on the guild's shard, which sends
each of them every event (``twin_sessions``), as Discord does for two sessions of one bot.
Each test races them on something that must happen once, and counts what Discord received
and what the database holds: one wins, the other backs off (saying so in its log), nothing
is done twice, and neither logs an error.

- both start at once on a guild with no board: both post one, one is kept (the other
  process deletes its own); both hear the same commands: one answer each (the other
  process's is refused by Discord, 40060, and it leaves the interaction); one
  ``/release open`` whose refusal reaches Discord first: one release, one thread, the
  opener's answer says so; one ``/release lock``: one lock event; one board edit per change;
- both start at the same moment (their READYs held until both identified) beside a ship
  whose process was SIGKILLed in its health gate: one takes the run up and drives it on,
  the other leaves it; deployed once, one "took it up again", one notes;
- both start beside the notes a dead process began to post: posted once;
- both start beside a due reminder: sent once.

The winner's first post in the thread waits at a gate of the stand-in until the loser has
logged that it backs off, so the two meet where they race, whatever the machine's load."""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conductor.bootstrap import Conductor, bootstrap
from conductor.releases.runs.driver import RunRequest
from conductor.states import RunKind
from conductor.views import Actor
from e2e.driver import BotProcess, Driver
from e2e.pg import execute, rows
from e2e.standin import EPHEMERAL, StandIn
from smoke.sample_app import SampleApp, config_toml, sample_app_table, serve_in_thread
from tests.helpers import bring_to_reviewed, outbox
from tests.postgres import Cluster

GUILD_ID = 626_262
#: each process's line when it leaves an interaction another process answered first
LEFT = "was answered by another process of this bot; leaving it"


@dataclass
class Guild:
    standin: StandIn
    d: Driver
    general: int
    notes: int
    deployments: int
    olga: int

    @property
    def operator(self) -> Actor:
        return Actor("olga", self.olga)


@pytest.fixture
def guild() -> Iterator[Guild]:
    standin = StandIn("e2e." + secrets.token_urlsafe(24))
    standin.twin_sessions = True
    standin.start()
    try:
        standin.call(lambda: standin.create_guild(GUILD_ID, "Twins"))
        d = Driver(standin)
        general, notes, deployments = (
            d.channel(name) for name in ("general", "release-notes", "deployments")
        )
        olga = d.user("olga", roles=(d.role("Operators"),))
        yield Guild(standin, d, general, notes, deployments, olga)
        assert d.failures() == []  # nothing Discord would refuse, bar the raced answers
    finally:
        standin.stop()


def _env(root: Path, g: Guild, url: str, **tables: dict[str, Any]) -> dict[str, str]:
    """An unsharded bot's environment: the stand-in, ``url``, a config file naming the guild,
    its channels and ``tables`` (written in ``root``)."""
    config = root / "conductor.toml"
    top = {
        "guild_id": GUILD_ID,
        "operator_role": "Operators",
        "notes_channel": "release-notes",
        "deployments_channel": "deployments",
    }
    config.write_text(config_toml(tables, top))
    return {
        "CONDUCTOR_DISCORD_TOKEN": g.standin.token,
        "CONDUCTOR_DISCORD_API_URL": g.standin.url,
        "CONDUCTOR_DATABASE_URL": url,
        "CONDUCTOR_CONFIG": str(config),
        "CONDUCTOR_WEB_ENABLED": "false",
    }


def _bots(root: Path, env: dict[str, str], *names: str) -> list[BotProcess]:
    bots = []
    for name in names:
        (root / name).mkdir()
        bots.append(BotProcess(root / name, env))
    return bots


def _start_together(g: Guild, bots: list[BotProcess]) -> None:
    """Start the processes and hold each one's READY until all identified (Discord takes one
    IDENTIFY per 5 s: they identify apart), then send them all at once, so what each does on
    ready (the runs' reconcile, the notes owed, the reminders, the board) it does at the same
    moment as the others."""
    g.standin.hold_ready = True
    for bot in bots:
        bot.start()

    def all_identified() -> bool:
        for bot in bots:
            if bot.proc is not None and bot.proc.poll() is not None:
                raise AssertionError(f"a bot exited:\n{bot.output()[-3000:]}")
        return g.standin.call(g.standin.held_ready) == len(bots)

    g.d.wait_for(all_identified, f"{len(bots)} IDENTIFYs")
    assert g.standin.call(g.standin.release_ready) == len(bots)
    for bot in bots:
        bot.wait_ready()


def _wait_logs(g: Guild, bots: list[BotProcess], *said: str) -> list[BotProcess]:
    """Until each of ``said`` is in the log of one of ``bots``; the bot that said each."""

    def who() -> list[BotProcess] | None:
        found = []
        for line in said:
            by = [bot for bot in bots if line in bot.output()]
            if not by:
                return None
            assert len(by) == 1, f"{line!r} was said by {len(by)} processes"
            found.append(by[0])
        return found

    return g.d.wait_for(who, f"{said} in the logs")


def _no_errors(*bots: BotProcess) -> None:
    for bot in bots:
        assert bot.errors() == [], bot.output()[-3000:]


def _texts(g: Guild, channel: int) -> list[str]:
    return [m["content"] for m in g.d.messages(channel)]


def _thread(g: Guild, name: str) -> int:
    """A thread in the notes channel, as ``/release open`` makes one."""
    thread = g.standin.call(lambda: g.standin.add_thread(g.notes, name))
    return int(thread["id"])


def _one_board(g: Guild, refreshes: int) -> str:
    """Until the board refresh each process made on ready (``refreshes`` in all) is in: a
    board posted, or the board edited; a second board a process posted beside the other's
    deleted by it, and the kept one edited by it. Then one board in the deployments channel,
    pinned once. Its id."""

    def settled() -> bool:
        posts = _board_calls(g, "POST", 200)
        edits = _board_calls(g, "PATCH", 200)
        deleted = _board_calls(g, "DELETE", 204)
        boards = g.d.messages(g.deployments)
        pinned = len(boards) == 1 and boards[0]["pinned"]
        ready = posts + edits >= refreshes + deleted
        return ready and deleted == posts - 1 and edits >= deleted and pinned

    g.d.wait_for(settled, f"{refreshes} board refreshes")
    [message] = g.d.messages(g.deployments)
    assert _board_calls(g, "PUT", 204) == 1  # pinned once
    return str(message["id"])


def _ephemeral(body: dict[str, Any]) -> bool:
    """An answer only its asker sees (a refusal)."""
    return bool(int((body.get("data") or {}).get("flags") or 0) & EPHEMERAL)


def _board_calls(g: Guild, method: str, status: int, showing: str = "") -> int:
    """The bot's requests of ``method`` on messages of the deployments channel that Discord
    answered with ``status`` (with ``showing``: whose body says it)."""
    within = f"/channels/{g.deployments}/messages"
    return g.standin.call(
        lambda: sum(
            1
            for c in g.standin.calls
            if c.method == method
            and c.status == status
            and c.path.startswith(within)
            and showing in str(c.body)
        )
    )


@asynccontextmanager
async def _domain(url: str) -> AsyncIterator[Conductor]:
    """The domain on the test's database, as a process of its own would build it, closed
    after."""
    domain = bootstrap(database_url=url)
    try:
        yield domain
    finally:
        await domain.close()


async def _assembled(url: str, g: Guild, name: str, thread: int) -> str:
    """An assembled release ``name`` with one reviewed member (as the domain makes it; no git),
    its notes thread ``thread``; its slug."""
    async with _domain(url) as domain:
        await bring_to_reviewed(domain, f"{name}-core", guild_id=GUILD_ID)
        view = await domain.releases.open(GUILD_ID, name, g.operator)
        await domain.releases.set_notes_thread(GUILD_ID, view.slug, thread)
        await domain.releases.add_task(GUILD_ID, f"{name}-core", g.operator)
        await domain.releases.assemble(GUILD_ID, g.operator)
        return view.slug


def _naive(moment: datetime) -> datetime:
    """As the database keeps a moment: UTC, without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _dead_owner() -> str:
    """The identity of a process of this host that ran and is gone (reaped)."""
    done = subprocess.Popen(["true"])  # noqa: S607 - coreutils
    done.wait()
    return f"{socket.gethostname()[:60]}:{done.pid}:deadbeef"


# -- both start on a guild with no board, and hear the same commands ------------------------


def _both_post_a_board_one_is_kept(g: Guild, bots: list[BotProcess]) -> str:
    """Neither finds a board: both post one (each held until both did); one is kept, pinned
    once; the other process deletes its own. The board's id."""
    g.d.hold_posts(g.deployments)
    _start_together(g, bots)
    g.d.wait_for(lambda: g.d.posts_waiting(g.deployments) == 2, "two boards posted")
    g.d.release_posts(g.deployments)
    board = _one_board(g, 2)
    _wait_logs(g, bots, f"another process posted the board in guild {GUILD_ID}")
    assert _board_calls(g, "DELETE", 204) == 1
    return board


def _one_answer(g: Guild, bots: list[BotProcess], command: str, **options: Any) -> int:
    """Both hear ``/command``: Discord takes one answer and refuses the other (40060), whose
    process leaves the interaction. Its id."""
    iid = g.d.slash(g.olga, g.general, command, **options)
    g.d.wait_for(lambda: sorted(g.d.callbacks(iid)) == [200, 400], f"both answers to /{command}")
    _wait_logs(g, bots, f"interaction {iid} (/{command}) {LEFT}")
    return iid


def _one_open_whose_refusal_answers_first(g: Guild, bots: list[BotProcess], url: str) -> str:
    """Both hear the open; the database lets one open the release and refuses the other. The
    refused one's answer reaches Discord first (held at the gate until both answered, then let
    through first): Discord takes it and refuses the opener's (40060). The opener leaves the
    answer, still makes the release's thread, and edits the answer to say what it did. The
    release's slug."""
    d = g.d
    d.hold_answers()
    opened = d.slash(g.olga, g.general, "release open", name="twins")
    d.wait_for(lambda: len(d.answers_waiting()) == 2, "both answers at the gate")
    assert d.release_answers(_ephemeral) == 1  # the refusal
    d.wait_for(lambda: d.callbacks(opened) == [200], "the refusal taken")
    assert d.release_answers() == 1
    d.wait_for(lambda: d.callbacks(opened) == [200, 400], "the opener's answer refused")
    [opener] = _wait_logs(g, bots, f"interaction {opened} (/release open) {LEFT}")
    assert "release opened guild=" in opener.output()
    d.wait_for(lambda: "Notes: <#" in d.said(opened), "the answer naming the thread")
    [answer] = d.answers(opened)
    assert "🧩 Opened `" in answer["content"] and "-twins`" in answer["content"]
    [(slug, state)] = rows(url, "SELECT slug, state FROM releases")
    assert slug.endswith("-twins") and state == "assembling"
    assert list(d.threads(g.notes)) == [slug]
    return str(slug)


def test_both_hear_the_same_commands_one_answers_and_acts_the_other_leaves_them(
    cluster: Cluster, guild: Guild, tmp_path: Path
) -> None:
    g, d = guild, guild.d
    with cluster.database(schema=True) as url:
        bots = _bots(tmp_path, _env(tmp_path, g, url), "first", "second")
        try:
            board = _both_post_a_board_one_is_kept(g, bots)
            status = _one_answer(g, bots, "release status")
            assert "No active release" in d.said(status)
            slug = _one_open_whose_refusal_answers_first(g, bots, url)
            d.wait_for(lambda: _board_calls(g, "PATCH", 200, slug), "the board showing it")
            # both refuse a second open: one refusal is the answer
            again = _one_answer(g, bots, "release open", name="again")
            assert f"`{slug}`" in d.said(again)
            # one lock, recorded once; the other process locks it again for the same reason:
            # nothing changed
            locked = _one_answer(g, bots, "release lock", reason="twins race")
            assert "twins race" in d.said(locked)
            assert rows(url, "SELECT kind, reason FROM lock_events") == [("locked", "twins race")]
            d.wait_for(lambda: _board_calls(g, "PATCH", 200, "twins race"), "the lock on the board")
            assert rows(url, "SELECT count(*) FROM releases") == [(1,)]
            assert [m["id"] for m in d.messages(g.deployments)] == [board]
        finally:
            for bot in bots:
                bot.stop()
        # one board edit per change, by the process that made it: the open's, the lock's
        opened = _board_calls(g, "PATCH", 200, slug) - _board_calls(g, "PATCH", 200, "twins race")
        assert opened == 1
        assert _board_calls(g, "PATCH", 200, "twins race") == 1
        raced = g.standin.call(lambda: [str(f) for f in g.standin.raced])
        assert len(raced) == 4 and all("a second initial response" in r for r in raced)
        _no_errors(*bots)


# -- both take up the run whose process died -------------------------------------------------


def test_both_take_up_the_ship_whose_process_died_one_drives_it_on(
    cluster: Cluster, guild: Guild, tmp_path: Path
) -> None:
    g, d = guild, guild.d
    production = outbox(tmp_path)
    deploy = tmp_path / "deploy.sh"
    deploy.write_text(
        "#!/bin/sh\n"
        f'echo "$CONDUCTOR_RELEASE $CONDUCTOR_VERSION" >> {production}/deploys.txt\n'
        f'echo "$CONDUCTOR_VERSION" > {production}/VERSION\n'
    )
    deploy.chmod(0o755)

    def deploys() -> list[str]:
        path = production / "deploys.txt"
        return path.read_text().splitlines() if path.exists() else []

    with (
        cluster.database(schema=True) as url,
        serve_in_thread(SampleApp(version_file=production / "VERSION")) as app,
    ):
        thread = _thread(g, "ship")
        slug = asyncio.run(_assembled(url, g, "ship", thread))
        env = _env(
            tmp_path,
            g,
            url,
            app=sample_app_table(app.url, smoke=[], health_timeout=5.0),
            deploy={
                "command": str(deploy),
                "timeout": 60,
                "health_timeout": 120,  # an outer bound: the test holds it at 503
                "health_interval": 0.05,
                "log_dir": str(tmp_path / "deploy-logs"),
                "read": [str(deploy)],
                "write": [str(production)],
            },
        )
        victim, first, second = bots = _bots(tmp_path, env, "victim", "first", "second")
        try:
            # the ship's process: deployed, then killed while production comes up slowly
            victim.start()
            victim.wait_ready()
            app.set_status("/up", 503)
            shipping = d.slash(g.olga, g.general, "release ship")
            assert "Shipping" in d.said(shipping)
            step = (
                "SELECT s.status FROM ship_steps s JOIN ship_runs r ON s.run_id = r.id "
                "WHERE s.name = 'health'"
            )
            d.wait_for(lambda: rows(url, step) == [("running",)], "the ship in its health gate")
            victim.kill()
            assert deploys() == [f"{slug} v1"]
            app.heal()

            # the two take it up at the same moment; the winner's first word in the thread
            # waits until the other has left the run to it
            d.hold_posts(thread)
            _start_together(g, [first, second])
            [run_id] = [r for (r,) in rows(url, "SELECT id FROM ship_runs")]
            winner, loser = _wait_logs(
                g,
                [first, second],
                f"run {run_id} claimed by",
                f"ship run {run_id} of {slug} is held by another process",
            )
            assert winner is not loser
            d.wait_for(lambda: d.posts_waiting(thread) == 1, "the winner's post at the gate")
            d.release_posts(thread)
            d.wait_for(
                lambda: rows(url, "SELECT status, owner FROM ship_runs") == [("done", None)],
                "the run done",
            )
            texts = _texts(g, thread)
            assert sum("took it up again" in t for t in texts) == 1, texts
            assert sum(f"Release notes — `{slug}`" in t for t in texts) == 1, texts
            assert any("from the health step" in t for t in texts)
            assert rows(url, "SELECT state FROM releases") == [("shipped",)]
            assert deploys() == [f"{slug} v1"]  # the deploy ran once, before the kill
            assert "claimed by" not in loser.output()
            _one_board(g, 3)
        finally:
            for bot in bots:
                bot.stop()
        _no_errors(*bots)


# -- both owe the same notes -----------------------------------------------------------------


async def _shipped_without_notes(url: str, g: Guild, thread: int) -> str:
    """A release shipped (no deploy, no seal) by a process with nowhere to post: its notes
    owed."""
    slug = await _assembled(url, g, "notes", thread)
    async with _domain(url) as domain:
        outcome = await domain.runs.start(
            RunKind.SHIP, GUILD_ID, g.operator, request=RunRequest(slug)
        )
        assert outcome.notes is None and outcome.run is not None
    return slug


def test_both_owe_the_notes_a_dead_process_began_one_posts_them(
    cluster: Cluster, guild: Guild, tmp_path: Path
) -> None:
    g, d = guild, guild.d
    with cluster.database(schema=True) as url:
        thread = _thread(g, "notes")
        slug = asyncio.run(_shipped_without_notes(url, g, thread))
        # a process began posting them a moment ago and died before Discord had them
        execute(
            url,
            "UPDATE releases SET notes_intent_at = :at, notes_intent_by = :by",
            at=_naive(datetime.now(UTC)),
            by=_dead_owner(),
        )
        bots = _bots(tmp_path, _env(tmp_path, g, url), "first", "second")
        try:
            d.hold_posts(thread)
            _start_together(g, bots)
            d.wait_for(lambda: d.posts_waiting(thread) == 1, "the notes at the gate")
            [loser] = _wait_logs(
                g, bots, f"the notes of {slug} are being posted by another process"
            )
            d.release_posts(thread)
            d.wait_for(
                lambda: rows(url, "SELECT notes_posted_at IS NOT NULL FROM releases") == [(True,)],
                "the notes recorded posted",
            )
            texts = _texts(g, thread)
            assert len(texts) == 1 and f"Release notes — `{slug}`" in texts[0], texts
            # posted by the other one: its intent, written over the dead process's
            [(by,)] = rows(url, "SELECT notes_intent_by FROM releases")
            [winner] = [bot for bot in bots if bot is not loser]
            assert winner.proc is not None and by.split(":")[1] == str(winner.proc.pid)
            _one_board(g, 2)
        finally:
            for bot in bots:
                bot.stop()
        _no_errors(*bots)


# -- both owe the same reminder --------------------------------------------------------------


async def _idle_release(url: str, g: Guild, thread: int) -> str:
    async with _domain(url) as domain:
        view = await domain.releases.open(GUILD_ID, "idle", g.operator)
        await domain.releases.set_notes_thread(GUILD_ID, view.slug, thread)
        return view.slug


def test_both_owe_the_same_reminder_one_sends_it(
    cluster: Cluster, guild: Guild, tmp_path: Path
) -> None:
    g, d = guild, guild.d
    with cluster.database(schema=True) as url:
        thread = _thread(g, "idle")
        slug = asyncio.run(_idle_release(url, g, thread))
        # untouched for two hours: a reminder is due after one
        then = _naive(datetime.now(UTC) - timedelta(hours=2))
        execute(url, "UPDATE releases SET opened_at = :at", at=then)
        execute(url, "UPDATE stage_events SET at = :at", at=then)
        reminders = {
            "idle_release_after": "1h",
            "red_seal_after": "off",
            "lock_after": "off",
            "check_every": "1s",
        }
        bots = _bots(tmp_path, _env(tmp_path, g, url, reminders=reminders), "first", "second")
        try:
            d.hold_posts(thread)
            _start_together(g, bots)
            d.wait_for(lambda: d.posts_waiting(thread) == 1, "the reminder at the gate")
            [loser] = _wait_logs(
                g, bots, f"reminder of release {slug} is being sent by another process"
            )
            d.release_posts(thread)
            d.wait_for(
                lambda: rows(url, "SELECT count, intent_at FROM reminders") == [(1, None)],
                "the reminder recorded sent",
            )
            [winner] = _wait_logs(g, bots, f"reminder 1 of release {slug} sent")
            assert winner is not loser
            texts = _texts(g, thread)
            assert len(texts) == 1 and texts[0].startswith("⏰ **Reminder 1**"), texts
            assert f"`{slug}` has been assembling for 2 h" in texts[0]
            _one_board(g, 2)
        finally:
            for bot in bots:
                bot.stop()
        _no_errors(*bots)
