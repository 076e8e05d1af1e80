"""The ``conductor`` command: run the bot, manage the database schema.

Errors are one plain line on stderr and a non-zero status (1: the operation failed,
2: the configuration is wrong). The Discord token is never printed, whatever happens.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import tomllib
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.settings import Settings, config_file
from conductor import migrate
from smoke import (
    AppConfig,
    CheckResult,
    SmokeConfigError,
    SmokeResult,
    Verdict,
    load_app_config,
    parse_app_config,
)

#: settings whose values must never be echoed back, even when they fail validation
_SECRET_SETTINGS = frozenset({"discord_token"})
_ENV_PREFIX = "CONDUCTOR_"
_BOT_MODULE = "bot.app"

MISSING_CREDENTIAL = (
    "error: CONDUCTOR_DISCORD_TOKEN is not set; export the bot token "
    "(or run `conductor demo`, which needs none)"
)
BOT_NOT_BUILT = "error: the Discord bot is not built yet (step 2)"

app = typer.Typer(
    name="conductor",
    help="Conductor: a Discord bot that conducts a team's release train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals could hold the token
)
db_app = typer.Typer(
    help="Manage the database schema (alembic migrations).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")

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
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _validation_lines(error: ValidationError) -> list[str]:
    lines = []
    for problem in error.errors():
        location = problem.get("loc", ())
        field = str(location[0]) if location else ""
        name = f"{_ENV_PREFIX}{field.upper()}" if field else "settings"
        line = f"{name}: {problem.get('msg', 'invalid value')}"
        given = problem.get("input")
        if field and field not in _SECRET_SETTINGS and isinstance(given, str | int | float):
            line += f" (got {str(given)[:60]!r})"
        lines.append(line)
    return lines


def load_settings() -> Settings:
    """``Settings()``, or exit 2 with one line per bad setting (values of secrets withheld)."""
    try:
        return Settings()
    except ValidationError as error:
        for line in _validation_lines(error):
            typer.echo(line, err=True)
        raise typer.Exit(2) from None
    except tomllib.TOMLDecodeError as error:
        _fail(f"error: {config_file()}: not valid TOML: {_one_line(error)}", 2)


def _database_url(url: str | None) -> str:
    return url if url else load_settings().database_url


def _describe(url: str) -> str:
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
    target = _database_url(url)
    try:
        migrate.upgrade(target, revision)
        _out.print(_describe(target), style="green")
    except Exception as error:
        _fail(f"error: upgrade failed: {_one_line(error)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[
        str, typer.Option("--revision", "-r", help="Target revision ('base' drops everything).")
    ] = "-1",
    url: UrlOption = None,
) -> None:
    """Revert migrations down to a revision (default: one step)."""
    target = _database_url(url)
    try:
        migrate.downgrade(target, revision)
        _out.print(_describe(target), style="yellow")
    except Exception as error:
        _fail(f"error: downgrade failed: {_one_line(error)}")


@db_app.command("current")
def db_current(url: UrlOption = None) -> None:
    """Show which migration the database is at."""
    target = _database_url(url)
    try:
        _out.print(_describe(target))
    except Exception as error:
        _fail(f"error: cannot read the database revision: {_one_line(error)}")


@db_app.command("check")
def db_check(url: UrlOption = None) -> None:
    """Verify the database is at head and the models match the migrations."""
    target = _database_url(url)
    try:
        migrate.check(target)
        _out.print(f"{_describe(target)}; the models match the migrations", style="green")
    except Exception as error:
        _fail(f"error: check failed: {_one_line(error)}")


def _check_app(settings: Settings) -> None:
    """A broken ``[app]`` table stops the start (exit 2) naming what is wrong, rather than
    surfacing as an error seal after the first ship. None at all is allowed: ships go
    unsealed."""
    if settings.app is None:
        typer.echo("warning: no [app] table: releases will ship without a smoke seal", err=True)
        return
    try:
        parse_app_config(settings.app)
    except SmokeConfigError as error:
        _fail(f"error: {config_file()}: {error}", 2)


@app.command("run")
def run() -> None:
    """Migrate the database and run the Discord bot (needs CONDUCTOR_DISCORD_TOKEN)."""
    settings = load_settings()
    token = settings.discord_token
    if token is None or not token.get_secret_value().strip():
        _fail(MISSING_CREDENTIAL, 2)
    _check_app(settings)
    try:
        migrate.upgrade(settings.database_url)
    except Exception as error:
        _fail(f"error: database migration failed: {_one_line(error)}")
    try:
        bot_app = importlib.import_module(_BOT_MODULE)
    except ModuleNotFoundError as error:
        if error.name != _BOT_MODULE:
            raise
        _fail(BOT_NOT_BUILT, 2)
    outcome = bot_app.run_bot(settings)
    if inspect.iscoroutine(outcome):  # an ``async def run_bot`` works too
        asyncio.run(outcome)


# -- conductor smoke --------------------------------------------------------------------------

_SMOKE_EXIT = {"green": 0, "red": 1, "error": 2}


def _smoke_app(url: str, config: str | None) -> AppConfig:
    """The suite to run: ``--config``'s ``[app]`` table, else ``conductor.toml``'s when it has
    one, else the default suite (the health check and ``/``); always against ``url``. Raises
    :class:`SmokeConfigError` naming the problem."""
    if config is not None:
        return load_app_config(config).at(url)
    default = config_file()
    if default.is_file():
        try:
            data = tomllib.loads(default.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise SmokeConfigError(f"{default}: cannot be read: {_one_line(error)}") from None
        if data.get("app") is not None:
            return parse_app_config(data["app"]).at(url)
    return parse_app_config({"production_url": url, "smoke": [{"path": "/"}]})


def _smoke_line(check: CheckResult) -> str:
    if check.ok:
        mark, style = "✓", "green"
    elif check.not_run:
        mark, style = "-", "yellow"
    else:
        mark, style = "✗", "red"
    label = f"{check.path} (health)" if check.kind == "health" else check.path
    parts = [f"[{style}]{mark}[/] {escape(label)}"]
    if check.status is not None:
        parts.append(str(check.status))
    if not check.not_run:
        parts.append(f"{check.duration_ms} ms")
    if check.reason:
        parts.append(escape(check.reason))
    if check.blocked:
        parts.append(f"{len(check.blocked)} write{'s' if len(check.blocked) != 1 else ''} blocked")
    return "  " + " · ".join(parts)


def _smoke_table(result: SmokeResult) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("check", no_wrap=True)
    table.add_column("status", justify="right")
    table.add_column("result")
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("why")
    for check in result.checks:
        label = f"{check.path} (health)" if check.kind == "health" else check.path
        if check.ok:
            outcome = "[green]pass[/]"
        elif check.not_run:
            outcome = "[yellow]not run[/]"
        else:
            outcome = "[red]FAIL[/]"
        why = check.reason or ""
        if check.blocked:
            n = len(check.blocked)
            why = "; ".join(filter(None, [why, f"{n} write{'s' if n != 1 else ''} blocked"]))
        table.add_row(
            escape(label),
            str(check.status) if check.status is not None else "-",
            outcome,
            "-" if check.not_run else f"{check.duration_ms} ms",
            escape(why),
        )
    return table


@app.command("smoke")
def smoke(
    url: Annotated[str, typer.Argument(help="Production base URL, e.g. https://app.example.com")],
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
) -> None:
    """Run the read-only smoke checks against URL in Chromium: exit 0 green, 1 red, 2 error."""
    # Playwright and httpx load only for this command (``conductor --help`` stays quick).
    from smoke.runner import PlaywrightRunner  # noqa: PLC0415

    try:
        suite = _smoke_app(url, config)
    except SmokeConfigError as error:
        _fail(f"error: {_one_line(error)}", 2)
    total = len(suite.smoke) + 1
    _out.print(
        f"Smoke seal of {escape(suite.name)} at {escape(suite.production_url)}: "
        f"{total} check{'s' if total != 1 else ''}, read-only (writes are blocked)"
    )

    def progress(check: CheckResult) -> None:
        _out.print(_smoke_line(check))

    async def run_suite() -> SmokeResult:
        if not _out.is_terminal:
            return await PlaywrightRunner().run(suite, on_check=progress)
        with _out.status(f"checking {escape(suite.production_url)}…"):
            return await PlaywrightRunner().run(suite, on_check=progress)

    result = asyncio.run(run_suite())
    if result.verdict is Verdict.ERROR:
        _fail(f"error: {_one_line(Exception(result.summary))}", 2)
    _out.print()
    _out.print(_smoke_table(result))
    if result.blocked:
        _out.print("Blocked writes (aborted in the browser, never sent):")
        for check in result.checks:
            for request in check.blocked:
                _out.print(f"  {request.method} {escape(request.url)}  (on {escape(check.path)})")
    style = "green" if result.verdict is Verdict.GREEN else "red"
    _out.print(
        f"Smoke seal: [bold {style}]{result.verdict.value}[/] — {escape(result.summary)} "
        f"({result.duration_ms / 1000:.1f} s)"
    )
    raise typer.Exit(_SMOKE_EXIT[result.verdict.value])


# -- conductor demo ---------------------------------------------------------------------------

DEMO_NEEDS_SIMCORD = (
    "error: `conductor demo` needs simcord, a dev dependency: "
    "pip install 'conductor[dev]' (or run `make demo`)"
)


@app.command("demo")
def demo() -> None:
    """Play a whole release train offline: no token, no network. The real bot against a local
    stand-in for Discord (simcord), sealing a local sample app in real Chromium; prints what
    each channel shows."""
    # discord.py, simcord and Playwright load only for this command.
    try:
        from conductor import demo as demo_module  # noqa: PLC0415
    except ModuleNotFoundError as error:
        if error.name != "simcord":
            raise
        _fail(DEMO_NEEDS_SIMCORD, 2)
    raise typer.Exit(demo_module.main())


def main() -> None:
    """The ``conductor`` console script."""
    app()


if __name__ == "__main__":
    main()
