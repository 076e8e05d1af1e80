"""The one place the domain is built: the database, every service, the sealer, the run driver
and its kinds, the release lock, wired once.

Each adapter is a parameter with a real default: the database from its URL, Playwright in
Chromium as the smoke runner (loaded only when no runner is given). The edge passes what only
it has (the Discord notes sink); tests pass fakes. The bot, the CLI, the demo and the
benchmarks all build through :func:`bootstrap`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor.guilds import GuildConfigs
from conductor.handoffs.apply import Handoffs
from conductor.releases.assembly import Assembler
from conductor.releases.deploy import parse_deploy_config
from conductor.releases.git import GitRepository, parse_git_config
from conductor.releases.locks import Locks
from conductor.releases.publisher import Publisher
from conductor.releases.runs.driver import Checkpoint, Driver, RunParts
from conductor.releases.runs.kinds import KINDS
from conductor.releases.runs.sink import NotesSink
from conductor.releases.runs.store import Runs
from conductor.releases.sandbox import Sandbox, SandboxMode
from conductor.releases.service import Releases
from conductor.reminders import (
    Clock,
    Reminders,
    ReminderSink,
    parse_reminders_config,
)
from conductor.reviews.service import Reviews
from conductor.seals.evidence import Evidence
from conductor.seals.records import SealRecords
from conductor.seals.sealer import Sealer
from conductor.sizing import Sizing, parse_sizing_config
from conductor.tasks import Tasks
from smoke.on_use import PlaywrightOnUse
from smoke.protocol import SmokeRunner
from store.db import DEFAULT_DATABASE_URL, Database

DEFAULT_REQUIRED_APPROVALS = 2


@dataclass(frozen=True, slots=True)
class Conductor:
    """The domain, built: one service per feature, sharing one database."""

    db: Database
    releases: Releases
    #: /release assemble: the RC branch and its tests (with ``[git]``), then the flip
    assembly: Assembler
    tasks: Tasks
    handoffs: Handoffs
    reviews: Reviews
    guilds: GuildConfigs
    seals: SealRecords
    sealer: Sealer
    #: the notes and alerts owed outside a run's steps, and /seal's re-seal
    publisher: Publisher
    #: every run (ship, rollback, redeploy): started, driven, resumed by one driver
    runs: Driver
    #: /release lock and unlock: the stop sign on the train
    locks: Locks
    #: the nags: a release left open, a red seal nobody acted on, a lock held too long
    reminders: Reminders
    #: /task size: the PM's and the PO's sealed bids (``[sizing]`` measures the actual)
    sizing: Sizing

    async def close(self) -> None:
        """Apply what is still queued, then close the database."""
        await self.handoffs.drain()
        await self.db.dispose()


def bootstrap(
    *,
    database_url: str = DEFAULT_DATABASE_URL,
    database: Database | None = None,
    required_approvals: int = DEFAULT_REQUIRED_APPROVALS,
    app: Mapping[str, Any] | None = None,
    runner: SmokeRunner | None = None,
    notes: NotesSink | None = None,
    git: Mapping[str, Any] | None = None,
    deploy: Mapping[str, Any] | None = None,
    runs: Runs | None = None,
    checkpoint: Checkpoint | None = None,
    screenshots_dir: str | Path | None = None,
    reminders: Mapping[str, Any] | None = None,
    reminder_sink: ReminderSink | None = None,
    clock: Clock | None = None,
    sizing: Mapping[str, Any] | None = None,
) -> Conductor:
    """Build the domain. ``app`` is the raw ``[app]`` table (validated at each seal; None:
    releases ship unsealed); ``notes`` is where the notes go (None: nowhere, they stay owed);
    ``git`` is the raw ``[git]`` table (None: assembly is the state change alone, the ship
    pushes nothing); ``deploy`` the raw ``[deploy]`` table (the command, its timeouts).
    ``runs`` holds the runs under this process's lease (a default one per database);
    ``checkpoint`` sees each step boundary of a run (``rollback:`` or ``redeploy:`` before
    theirs). ``screenshots_dir`` keeps the screenshots of failed seal checks
    (None: ``screenshots`` beside the SQLite file). ``reminders`` is the raw ``[reminders]``
    table (None: the default intervals), ``reminder_sink`` where they go (None: nowhere, none
    are sent), ``clock`` what time it is (None: the database's clock); the lock reminders read
    the lock from the domain's own :class:`~conductor.releases.locks.Locks`. ``sizing`` is
    the raw ``[sizing]`` table (None: the defaults of :mod:`conductor.sizing`). Raises
    :class:`~conductor.releases.git.GitConfigError`,
    :class:`~conductor.releases.deploy.DeployConfigError`,
    :class:`~conductor.reminders.ReminderConfigError` or
    :class:`~conductor.sizing.SizingConfigError` for a malformed table."""
    repo = GitRepository(parse_git_config(git)) if git is not None else None
    deploy_config = parse_deploy_config(deploy)
    reminder_config = parse_reminders_config(reminders)
    sizing_config = parse_sizing_config(sizing)
    db = database if database is not None else Database(database_url)
    if runner is None:
        runner = PlaywrightOnUse()
    releases = Releases(db, sizing_config)
    seals = SealRecords(db)
    evidence = Evidence(
        Path(screenshots_dir).expanduser().absolute()
        if screenshots_dir  # "" (an empty setting) is the default too
        else default_screenshots_dir(db)
    )
    sealer = Sealer(seals, runner, app, evidence)
    runs = runs or Runs(db)
    publisher = Publisher(releases, sealer, notes, owner=runs.owner)
    sandbox = Sandbox(
        deploy_config.sandbox or (repo.config.sandbox if repo is not None else SandboxMode.BWRAP)
    )
    parts = RunParts(releases, sealer, publisher, repo, deploy_config, sandbox)
    driver = Driver(parts, runs, KINDS, checkpoint=checkpoint)
    locks = Locks(db)
    return Conductor(
        db=db,
        releases=releases,
        assembly=Assembler(releases, repo),
        tasks=Tasks(db),
        handoffs=Handoffs(db, required_approvals=required_approvals),
        reviews=Reviews(db),
        guilds=GuildConfigs(db),
        seals=seals,
        sealer=sealer,
        publisher=publisher,
        runs=driver,
        locks=locks,
        reminders=Reminders(db, reminder_config, reminder_sink, locks=locks, clock=clock),
        sizing=Sizing(db, sizing_config),
    )


def default_screenshots_dir(db: Database) -> Path:
    """``screenshots`` beside the SQLite database file; in the working directory for another
    database (or one in memory)."""
    name = db.url.database if db.is_sqlite else None
    if name and name != ":memory:" and not name.startswith("file:"):
        return Path(name).absolute().parent / "screenshots"
    return Path("screenshots").absolute()
