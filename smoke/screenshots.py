"""The screenshots of failed checks on disk: a safe file name for each, and writing them.

A check's path comes from a config file, maybe a hostile one: a file name is made of ASCII
letters, digits and dashes only, so none can climb out of its directory (``../../etc`` is
``03-etc.png``). A disk that is full or refuses the write costs the screenshot, never the
verdict: each problem comes back as a line for the caller to log or print.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from smoke.result import CheckResult

log = logging.getLogger(__name__)

#: the first bytes of every PNG file
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: the longest name part taken from a check's path
_NAME_LIMIT = 48
_UNSAFE = re.compile(r"[^a-z0-9]+")


def safe_part(text: str, *, fallback: str = "root", limit: int = _NAME_LIMIT) -> str:
    """``text`` as a file name part: lower-case ASCII letters, digits and single dashes,
    at most ``limit`` characters, never empty (``fallback``), never ``.`` or ``..``."""
    part = _UNSAFE.sub("-", text.lower()).strip("-")[:limit].strip("-")
    return part or fallback


def screenshot_name(index: int, path: str) -> str:
    """The file name of the screenshot of the check at ``index`` in the result (the health
    check is 0): ``02-signin.png``; the number keeps two checks of one path apart."""
    return f"{index:02d}-{safe_part(path)}.png"


def with_screenshots(checks: Sequence[CheckResult]) -> list[tuple[int, CheckResult]]:
    """The checks that carry a screenshot, each with its index in ``checks``."""
    return [(i, check) for i, check in enumerate(checks) if check.screenshot]


def write_screenshots(
    checks: Sequence[CheckResult], directory: Path
) -> tuple[dict[int, Path], list[str]]:
    """Write each screenshot of ``checks`` into ``directory`` (created if missing), named by
    :func:`screenshot_name`. Returns the files written, by the check's index, and one line per
    problem (a full disk, a directory that cannot be made); never raises for the disk."""
    shots = with_screenshots(checks)
    written: dict[int, Path] = {}
    if not shots:
        return written, []
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return written, [f"cannot create {directory}: {_why(error)}"]
    problems: list[str] = []
    for index, check in shots:
        target = directory / screenshot_name(index, check.path)
        try:
            with target.open("wb") as file:
                file.write(check.screenshot or b"")
        except OSError as error:
            problems.append(f"cannot write {target}: {_why(error)}")
            try:
                target.unlink(missing_ok=True)  # no half a PNG left behind
            except OSError:
                log.debug("could not remove the partial %s", target, exc_info=True)
            continue
        written[index] = target
    return written, problems


def _why(error: OSError) -> str:
    return error.strerror or type(error).__name__
