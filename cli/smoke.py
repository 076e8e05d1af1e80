"""``conductor smoke URL``: which suite to run, a line per check as it finishes, then a table.

Imported only when the command runs; Playwright loads only when the suite starts.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.config_file import ConfigFileError, readable_config
from conductor.text import mask_credentials, one_line
from smoke import (
    AppConfig,
    CheckResult,
    SmokeConfigError,
    SmokeResult,
    Verdict,
    load_app_config,
    parse_app_config,
)
from smoke.screenshots import write_screenshots

if TYPE_CHECKING:
    from smoke.runner import Waiting

#: the exit status of each verdict
EXIT = {"green": 0, "red": 1, "error": 2}


#: the checks run without an ``[app]`` table (the health check, and ``/``); their URL is
#: always replaced by the command's
_DEFAULT_SUITE = {"production_url": "https://app.example.com", "smoke": [{"path": "/"}]}


def suite_for(url: str, config: str | None) -> AppConfig:
    """The suite to run: ``--config``'s ``[app]`` table, else ``conductor.toml``'s when it has
    one, else the default suite (the health check and ``/``); always against ``url``. Raises
    :class:`SmokeConfigError` naming the problem (a bad ``url`` as ``URL``, the argument:
    whatever the file's ``app.production_url`` says is not used)."""
    return _checks(config).at(url, named="URL")


def _checks(config: str | None) -> AppConfig:
    if config is not None:
        return load_app_config(config)
    try:
        default = readable_config()
    except ConfigFileError as error:
        raise SmokeConfigError(str(error)) from None
    if default is not None:
        try:
            data = tomllib.loads(default.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise SmokeConfigError(
                f"{default}: not valid UTF-8 (a TOML file is UTF-8 text)"
            ) from None
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise SmokeConfigError(f"{default}: cannot be read: {one_line(error)}") from None
        if data.get("app") is not None:
            return parse_app_config(data["app"])
    return parse_app_config(_DEFAULT_SUITE)


def _label(check: CheckResult) -> str:
    return f"{check.path} (health)" if check.kind == "health" else check.path


def _writes(count: int) -> str:
    return f"{count} write{'s' if count != 1 else ''} blocked"


def check_line(check: CheckResult) -> str:
    """One check as it finishes: ``✓ / 200 · 153 ms``."""
    if check.ok:
        mark, style = "✓", "green"
    elif check.not_run:
        mark, style = "-", "yellow"
    else:
        mark, style = "✗", "red"
    parts = [f"[{style}]{mark}[/] {escape(_label(check))}"]
    if check.status is not None:
        parts.append(str(check.status))
    if not check.not_run:
        parts.append(f"{check.duration_ms} ms")
    if check.reason:
        parts.append(escape(check.reason))
    if check.blocked:
        parts.append(_writes(len(check.blocked)))
    return "  " + " · ".join(parts)


def waiting_line(wait: Waiting) -> str:
    """A check still waiting: ``… /signin · waiting for selector #signin · 5 s of 15 s``."""
    return (
        f"  [dim]…[/] {escape(wait.path)} · waiting for {escape(wait.what)} · "
        f"{wait.waited:.0f} s of {wait.budget:g} s"
    )


def result_table(result: SmokeResult) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("check", no_wrap=True)
    table.add_column("status", justify="right")
    table.add_column("result")
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("why")
    for check in result.checks:
        if check.ok:
            outcome = "[green]pass[/]"
        elif check.not_run:
            outcome = "[yellow]not run[/]"
        else:
            outcome = "[red]FAIL[/]"
        why = check.reason or ""
        if check.blocked:
            why = "; ".join(filter(None, [why, _writes(len(check.blocked))]))
        table.add_row(
            escape(_label(check)),
            str(check.status) if check.status is not None else "-",
            outcome,
            "-" if check.not_run else f"{check.duration_ms} ms",
            escape(mask_credentials(why)),
        )
    return table


class ScreenshotsDirError(Exception):
    """``--screenshots DIR`` cannot be used; the message says why."""


def screenshots_dir(given: str) -> Path:
    """``--screenshots DIR``, created if missing (before the suite runs, so a bad DIR costs
    no run). Raises :class:`ScreenshotsDirError` naming why it cannot be used."""
    path = Path(given).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ScreenshotsDirError(f"{path} exists and is not a directory") from None
    except OSError as error:
        raise ScreenshotsDirError(
            f"{path} cannot be created: {error.strerror or one_line(error)}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ScreenshotsDirError(f"{path} is not writable")
    return path


def save_screenshots(
    result: SmokeResult, directory: Path
) -> tuple[list[tuple[CheckResult, Path]], list[str]]:
    """One PNG per failed check that has one, in ``directory``: the files written with their
    checks, and a line per file the disk refused."""
    written, problems = write_screenshots(result.checks, directory)
    return [(result.checks[i], path) for i, path in sorted(written.items())], problems


def run_suite(out: Console, suite: AppConfig) -> SmokeResult:
    """Run ``suite`` in Chromium, printing each check as it finishes."""
    from smoke import driver  # noqa: PLC0415 - Playwright loads here
    from smoke.runner import PlaywrightRunner  # noqa: PLC0415

    total = len(suite.smoke) + 1
    out.print(
        f"Smoke seal of {escape(suite.name)} at {escape(mask_credentials(suite.production_url))}: "
        f"{total} check{'s' if total != 1 else ''}, read-only (writes are blocked)"
    )

    def progress(check: CheckResult) -> None:
        out.print(mask_credentials(check_line(check)))

    def waiting(wait: Waiting) -> None:
        out.print(mask_credentials(waiting_line(wait)))

    runner = PlaywrightRunner(on_wait=waiting)

    async def run() -> SmokeResult:
        if not out.is_terminal:
            return await runner.run(suite, on_check=progress)
        with out.status(f"checking {escape(mask_credentials(suite.production_url))}…"):
            return await runner.run(suite, on_check=progress)

    # On the loop where the console script started Playwright's driver, if it did.
    return driver.run(run())


def report(
    out: Console,
    result: SmokeResult,
    *,
    screenshots: Sequence[tuple[CheckResult, Path]] | None = None,
) -> None:
    """The table, the blocked writes, the screenshots written (None: none were asked for),
    and the verdict line."""
    out.print()
    out.print(result_table(result))  # paths and reasons: no URL with its credentials
    if result.blocked:
        out.print("Blocked writes (aborted in the browser, never sent):")
        for check in result.checks:
            for request in check.blocked:
                url = escape(mask_credentials(request.url))
                out.print(f"  {request.method} {url}  (on {escape(check.path)})")
    if screenshots:
        out.print("Screenshots of the failed checks:")
        for check, path in screenshots:
            out.print(f"  {escape(str(path))}  (of {escape(check.path)})")
    elif screenshots is not None and result.failed:
        out.print("No screenshots: no failed check had a page to show.")
    style = "green" if result.verdict is Verdict.GREEN else "red"
    out.print(
        f"Smoke seal: [bold {style}]{result.verdict.value}[/] — "
        f"{escape(mask_credentials(result.summary))} "
        f"({result.duration_ms / 1000:.1f} s)"
    )
