"""The ``conductor`` command: run the bot, manage the database schema, seal a URL, play the demo.

Errors are one plain line on stderr and a non-zero status (1: the operation failed,
2: the configuration is wrong). The Discord token is never printed, whatever happens.

Only typer and rich load at start: each command imports what it needs when it runs (the
settings, alembic, Playwright, discord.py), so ``conductor --help`` answers at once.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from cli.board import board

if TYPE_CHECKING:
    from pydantic import ValidationError

    from bot.settings import Settings
    from store.downgrade import DowngradePlan

#: settings whose values must never be echoed back, even when they fail validation
_SECRET_SETTINGS = frozenset({"discord_token", "client_secret", "session_secret"})

MISSING_CREDENTIAL = (
    "error: CONDUCTOR_DISCORD_TOKEN is not set; export the bot token "
    "(or run `conductor demo`, which needs none)"
)
DEMO_NEEDS_SIMCORD = (
    "error: `conductor demo` needs simcord, a dev dependency: "
    "pip install 'conductor[dev]' (or run `make demo`)"
)

app = typer.Typer(
    name="conductor",
    help="Conductor: a Discord bot that conducts a team's release train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals could hold the token
    # click's plain help: typer's rich help loads rich.markdown and markdown-it, ~0.1 s of a
    # help that should answer at once
    rich_markup_mode=None,
)
db_app = typer.Typer(
    help="Manage the database schema (alembic migrations).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")


def _version_line() -> str:
    """``conductor X.Y.Z``: the installed distribution's version; from a checkout that was
    never installed, its ``pyproject.toml``'s, marked as such."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return f"conductor {version('conductor')}"
    except PackageNotFoundError:
        pass
    import tomllib  # noqa: PLC0415

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        return f"conductor {project['version']} (from the checkout at {pyproject.parent})"
    except (OSError, ValueError, KeyError):
        return "conductor (version unknown: not installed, and no pyproject.toml beside it)"


def _show_version(asked: bool) -> None:
    if asked:
        typer.echo(_version_line())
        raise typer.Exit(0)


@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print Conductor's version and exit.",
            callback=_show_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Conductor: a Discord bot that conducts a team's release train."""


# Colour only on a terminal; rich writes plain text to pipes and files.
_out = Console(highlight=False, soft_wrap=True)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Database URL (default: CONDUCTOR_DATABASE_URL / the config file / conductor.db).",
        show_default=False,
    ),
]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _one_line(error: BaseException) -> str:
    from conductor.text import one_line  # noqa: PLC0415

    return _shown(one_line(error))


def _shown(text: str) -> str:
    """``text`` with any password in a URL masked: nothing printed carries credentials."""
    from conductor.text import mask_credentials  # noqa: PLC0415

    return mask_credentials(text)


def _validation_lines(error: ValidationError) -> list[str]:
    from bot.settings import written_at  # noqa: PLC0415

    lines = []
    for problem in error.errors():
        location = problem.get("loc", ())
        field = str(location[0]) if location else ""
        # named where it was written: CONDUCTOR_WEB_PORT, or conductor.toml: [web] port
        line = f"{written_at(tuple(location))}: {problem.get('msg', 'invalid value')}"
        given = problem.get("input")
        secret = not _SECRET_SETTINGS.isdisjoint(map(str, location))
        if field and not secret and isinstance(given, str | int | float):
            # as written: '70000' from a variable, 70000 from the file
            line += f" (got {given[:60]!r})" if isinstance(given, str) else f" (got {given})"
        lines.append(_shown(line))
    return lines


def load_settings() -> Settings:
    """``Settings()``, or exit 2 with one line per bad setting (values of secrets withheld)."""
    import tomllib  # noqa: PLC0415

    from pydantic import ValidationError  # noqa: PLC0415

    from bot.config_file import ConfigFileError, config_file  # noqa: PLC0415
    from bot.settings import Settings  # noqa: PLC0415

    try:
        return Settings()
    except ValidationError as error:
        for line in _validation_lines(error):
            typer.echo(line, err=True)
        raise typer.Exit(2) from None
    except ConfigFileError as error:
        _fail(f"error: {error}", 2)
    except tomllib.TOMLDecodeError as error:
        _fail(f"error: {config_file()}: not valid TOML: {_one_line(error)}", 2)
    except UnicodeDecodeError:
        _fail(f"error: {config_file()}: not valid UTF-8 (a TOML file is UTF-8 text)", 2)
    except OSError as error:
        _fail(f"error: {config_file()}: cannot be read: {_one_line(error)}", 2)


# -- conductor db -----------------------------------------------------------------------------


def _database_url(url: str | None) -> str:
    return url if url else load_settings().database_url


def _describe(url: str) -> str:
    from store import migrate  # noqa: PLC0415

    at, head = migrate.current(url), migrate.head()
    if at is None:
        return f"database is empty (no migrations applied; head is {head})"
    if at == head:
        return f"database at head ({at})"
    return f"database at {at} (head is {head})"


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option("--revision", "-r", help="Target revision.")] = "head",
    url: UrlOption = None,
) -> None:
    """Apply migrations up to a revision (default: the newest)."""
    from store import migrate  # noqa: PLC0415

    target = _database_url(url)
    try:
        migrate.upgrade(target, revision)
        _out.print(_describe(target), style="green")
    except Exception as error:
        _fail(f"error: upgrade failed: {_one_line(error)}")


def _existing(url: str) -> str:
    """``url``, when it names a database there is: a SQLite file that does not exist is
    refused (exit 1) rather than created empty by a command that only reads it."""
    from store.db import sqlite_file  # noqa: PLC0415

    path = sqlite_file(url)
    if path is not None and not path.is_file():
        _fail(
            f"error: there is no database at {path}: run `conductor db upgrade` to create it "
            "(or name the right one with --url or CONDUCTOR_DATABASE_URL)"
        )
    return url


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[
        str, typer.Option("--revision", "-r", help="Target revision ('base' drops everything).")
    ] = "-1",
    url: UrlOption = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Drop tables and columns that hold data without asking (a SQLite database "
            "is still copied beside its file first).",
        ),
    ] = False,
) -> None:
    """Revert migrations down to a revision (default: one step).

    A downgrade that would drop data says what, copies a SQLite database beside its file
    (PostgreSQL: names the pg_dump to run), then asks; without a terminal it needs --yes.
    """
    from store import downgrade, migrate  # noqa: PLC0415

    target = _existing(_database_url(url))
    try:
        plan = downgrade.plan_downgrade(target, revision)
    except Exception as error:
        _fail(f"error: downgrade failed, nothing was changed: {_one_line(error)}")
    if plan.losses:
        _confirm_losses(target, plan, yes=yes)
    try:
        migrate.downgrade(target, revision)
        _out.print(_describe(target), style="yellow")
    except Exception as error:
        _fail(f"error: downgrade failed: {_one_line(error)}")


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _confirm_losses(url: str, plan: DowngradePlan, *, yes: bool) -> None:
    """Say what the downgrade would drop, keep a copy (SQLite) or name pg_dump (PostgreSQL),
    then ask on a terminal, or go on only with ``--yes``: else exit 1, nothing dropped."""
    import sys  # noqa: PLC0415

    from store.downgrade import backup_sqlite, pg_dump_command  # noqa: PLC0415

    to = plan.target or "base"
    typer.echo(f"warning: downgrading from {plan.current} to {to} drops data:", err=True)
    for loss in plan.losses:
        if loss.column is None:
            typer.echo(f"  table {loss.name}: {loss.rows:,} row{_s(loss.rows)}", err=True)
        else:
            typer.echo(f"  column {loss.name}: {loss.rows:,} value{_s(loss.rows)}", err=True)
    empty = sum(1 for loss in plan.dropped if loss.column is None and not loss.rows)
    if empty:
        typer.echo(f"  (and {empty} table{_s(empty)} without rows)", err=True)
    if url.startswith("sqlite"):
        try:
            backup = backup_sqlite(url, f"to-{to}")
        except Exception as error:
            _fail(
                f"error: nothing was dropped: the backup could not be written: {_one_line(error)}"
            )
        typer.echo(f"backup: {backup} (the whole database as it is now)", err=True)
    else:
        typer.echo(
            f"no backup written (PostgreSQL): run first  {_shown(pg_dump_command(url, f'to-{to}'))}",
            err=True,
        )
    if yes:
        return
    if not sys.stdin.isatty():
        _fail(
            "error: nothing was dropped: this downgrade loses the data above; "
            "run it again with --yes to drop it"
        )
    if not typer.confirm("Drop it?", default=False, err=True):
        _fail("nothing was dropped")


@db_app.command("current")
def db_current(url: UrlOption = None) -> None:
    """Show which migration the database is at."""
    target = _existing(_database_url(url))
    try:
        _out.print(_describe(target))
    except Exception as error:
        _fail(f"error: cannot read the database revision: {_one_line(error)}")


@db_app.command("check")
def db_check(url: UrlOption = None) -> None:
    """Verify the schema is at head and matches the models."""
    from store import migrate  # noqa: PLC0415

    target = _existing(_database_url(url))
    try:
        migrate.check(target)
    except Exception as error:
        _fail(f"error: check failed: {_check_failure(target, error)}")
    _out.print(f"{_describe(target)}; the models match the migrations", style="green")


def _check_failure(url: str, error: Exception) -> str:
    """Why ``db check`` failed, and the fix: behind head, ``conductor db upgrade``."""
    from store import migrate  # noqa: PLC0415

    try:
        at, head = migrate.current(url), migrate.head()
    except Exception:
        return _one_line(error)  # the database cannot even be read: that says it
    if at == head:  # at head, yet the models differ: the migrations miss a change
        return f"the models do not match the migrations at {head}: {_one_line(error)}"
    where = f"at {at}" if at else "empty (no migration applied)"
    return f"the database is {where}, not at head ({head}): run `conductor db upgrade`"


@db_app.command("copy")
def db_copy(
    source: Annotated[str, typer.Argument(help="The database to copy from (its URL).")],
    target: Annotated[
        str, typer.Argument(help="The database to copy into: empty, or migrated and empty.")
    ],
) -> None:
    """Copy every table from one database to another (SQLite to PostgreSQL, and back), in one
    transaction on the target; the counts are checked after."""
    import asyncio  # noqa: PLC0415

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    from store.copy import CopyRefused, copy_database, count_rows  # noqa: PLC0415

    shown = Progress(
        TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
        console=_out, transient=True,
    )  # fmt: skip
    bars: dict[str, object] = {}

    def told(table: str, done: int, total: int) -> None:
        if total < 5 * 1000:  # a bar only where there is time to see it
            return
        if table not in bars:
            bars[table] = shown.add_task(table, total=total)
        shown.update(bars[table], completed=done)  # type: ignore[arg-type]

    _existing(source)  # read only: never created empty
    try:
        with shown:
            copied = asyncio.run(copy_database(source, target, progress=told))
        after = asyncio.run(count_rows(target))
    except CopyRefused as refused:
        _fail(f"error: nothing was copied: {_shown(str(refused))}", 2)
    except Exception as error:
        _fail(f"error: the copy failed, nothing was written: {_one_line(error)}")
    for table in copied:
        _out.print(f"{table.table:<20} {table.rows:>9,} row{'' if table.rows == 1 else 's'}")
    wrong = [t.table for t in copied if after.get(t.table) != t.rows]
    if wrong:
        _fail(f"error: after the copy the target's counts differ in: {', '.join(wrong)}")
    rows = sum(t.rows for t in copied)
    _out.print(
        f"copied {rows:,} rows in {len(copied)} tables to {_shown(target)}; the counts match",
        style="green",
    )


# -- conductor run ----------------------------------------------------------------------------


def _check_tables(settings: Settings) -> None:
    """A broken ``[app]``, ``[git]``, ``[deploy]``, ``[reminders]`` or ``[sizing]`` table stops the start
    (exit 2) naming what is wrong, rather than surfacing at the first seal or assembly. None
    at all is allowed: ships go unsealed, assembly is the state change alone, reminders keep
    their default intervals."""
    from bot.config_file import config_file  # noqa: PLC0415
    from conductor.releases.deploy import DeployConfigError, parse_deploy_config  # noqa: PLC0415
    from conductor.releases.git import GitConfigError, parse_git_config  # noqa: PLC0415
    from conductor.reminders import ReminderConfigError, parse_reminders_config  # noqa: PLC0415
    from conductor.sizing import SizingConfigError, parse_sizing_config  # noqa: PLC0415
    from smoke import SmokeConfigError, parse_app_config  # noqa: PLC0415

    try:
        if settings.git is not None:
            parse_git_config(settings.git)
        parse_deploy_config(settings.deploy)
        parse_reminders_config(settings.reminders)
        parse_sizing_config(settings.sizing)
    except (GitConfigError, DeployConfigError, ReminderConfigError, SizingConfigError) as error:
        _fail(f"error: {config_file()}: {error}", 2)
    if settings.app is None:
        typer.echo("warning: no [app] table: releases will ship without a smoke seal", err=True)
        return
    try:
        parse_app_config(settings.app)
    except SmokeConfigError as error:
        _fail(f"error: {config_file()}: {error}", 2)


def _check_sandbox(settings: Settings) -> None:
    """With a test or deploy command to run, the sandbox must work here (bubblewrap present
    and allowed), unless the operator wrote ``sandbox = "off"``: else the start stops (exit
    2) in one line saying what to do."""
    import asyncio  # noqa: PLC0415

    from bot.config_file import config_file  # noqa: PLC0415
    from conductor.releases.deploy import parse_deploy_config  # noqa: PLC0415
    from conductor.releases.git import parse_git_config  # noqa: PLC0415
    from conductor.releases.sandbox import Sandbox, SandboxMode  # noqa: PLC0415

    git = parse_git_config(settings.git) if settings.git is not None else None
    deploy = parse_deploy_config(settings.deploy)
    modes = set()
    if git is not None and git.test_command is not None:
        modes.add(git.sandbox)
    if deploy.command is not None:
        modes.add(deploy.sandbox or (git.sandbox if git is not None else SandboxMode.BWRAP))
    for mode in sorted(modes):
        if (problem := asyncio.run(Sandbox(mode).probe())) is not None:
            _fail(f"error: {config_file()}: {problem}", 2)


def _check_web(settings: Settings) -> None:
    """The board served anywhere but loopback needs Login with Discord: without its settings
    the start stops (exit 2) naming each one missing."""
    missing = settings.login_missing()
    if missing:
        _fail(
            f"error: [web] host = {settings.web.host} is not loopback, so the board asks for "
            f"a Discord login, which needs {', '.join(missing)}; set them, or keep [web] host "
            "on 127.0.0.1 (or enabled = false)",
            2,
        )


def _at_head(url: str) -> bool:
    """Whether the database is at the migrations' head already (a restart, the usual case):
    then alembic (about 9 MB) is never imported and the bot runs without it in its memory."""
    import asyncio  # noqa: PLC0415

    from store.db import Database  # noqa: PLC0415

    async def check() -> bool:
        database = Database(url)
        try:
            await database.require_head()
        except Exception:  # behind, empty or unreachable: the upgrade says which
            return False
        finally:
            await database.dispose()
        return True

    return asyncio.run(check())


@app.command("run")
def run() -> None:
    """Migrate the database and run the Discord bot.

    Needs CONDUCTOR_DISCORD_TOKEN; the rest comes from CONDUCTOR_* and conductor.toml.
    """
    from conductor.releases.sandbox import close_process, forget_secrets  # noqa: PLC0415
    from store import migrate  # noqa: PLC0415

    close_process()  # its environment (the token) and memory: out of its children's reach
    settings = load_settings()
    token = settings.discord_token
    if token is None or not token.get_secret_value().strip():
        _fail(MISSING_CREDENTIAL, 2)
    _check_tables(settings)
    _check_web(settings)
    _check_sandbox(settings)
    if not _at_head(settings.database_url):
        try:
            migrate.upgrade(settings.database_url)
        except Exception as error:
            _fail(f"error: database migration failed: {_one_line(error)}")
    forget_secrets()  # read once, kept in the settings: in nothing handed to a child
    from cli.run import run_bot  # noqa: PLC0415 - discord.py loads here

    run_bot(settings)


app.command("board")(board)


# -- conductor smoke --------------------------------------------------------------------------


@app.command("smoke")
def smoke(
    url: Annotated[
        str, typer.Argument(metavar="URL", help="Production base URL, e.g. https://app.example.com")
    ],
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML file with the [app] table (default: conductor.toml when it exists; "
            "without one, the health check /up and / answering 200).",
            show_default=False,
        ),
    ] = None,
    screenshots: Annotated[
        str | None,
        typer.Option(
            "--screenshots",
            metavar="DIR",
            help="Write a PNG of each failed page into DIR (created if missing).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Seal URL with the read-only smoke checks.

    Each check runs in real Chromium; exit 0 green, 1 red, 2 error.
    """
    from cli import smoke as command  # noqa: PLC0415
    from smoke import SmokeConfigError, Verdict  # noqa: PLC0415

    try:
        suite = command.suite_for(url, config)
    except SmokeConfigError as error:
        _fail(f"error: {_one_line(error)}", 2)
    shots = None
    if screenshots is not None:
        try:
            shots = command.screenshots_dir(screenshots)
        except command.ScreenshotsDirError as error:
            _fail(f"error: --screenshots: {_one_line(error)}", 2)
    result = command.run_suite(_out, suite)
    if result.verdict is Verdict.ERROR:
        _fail(f"error: {_one_line(Exception(result.summary))}", 2)
    written = None
    if shots is not None:
        written, problems = command.save_screenshots(result, shots)
        for problem in problems:  # the verdict stands; only the file is missing
            typer.echo(f"warning: screenshot not written: {_shown(problem)}", err=True)
    command.report(_out, result, screenshots=written)
    raise typer.Exit(command.EXIT[result.verdict.value])


# -- conductor demo ---------------------------------------------------------------------------


@app.command("demo")
def demo(
    keep_database: Annotated[
        Path | None,
        typer.Option(
            "--keep-database",
            help="Save the demo's database (SQLite) at this path once it has played.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Play a whole release train offline.

    No token, no network: the real bot against a local stand-in for Discord (simcord),
    sealing a local sample app in real Chromium; prints what each channel shows.
    """
    # discord.py, simcord and Playwright load only for this command.
    try:
        from cli.demo import script  # noqa: PLC0415
    except ModuleNotFoundError as error:
        if error.name != "simcord":
            raise
        _fail(DEMO_NEEDS_SIMCORD, 2)
    raise typer.Exit(script.main(keep=keep_database))


def main() -> None:
    """The ``conductor`` console script."""
    try:
        app()
    finally:
        # The process ends here: frozen, the objects it made are not collected again on the way
        # out (the interpreter's last collections took ~0.1 s of `conductor smoke`).
        gc.freeze()


if __name__ == "__main__":
    main()
