"""The ``conductor`` command: the composition root at the top of the house.

Each command imports what it needs when it runs, so ``conductor --help`` loads neither
discord.py, nor the database, nor the browser.
"""

from __future__ import annotations

import sys
from contextlib import suppress

__all__ = ["main"]


def main() -> None:
    """The console script. For ``conductor smoke`` it first starts Playwright's driver, so that
    node loads it while Python imports the command (about 0.2 s of a run of 1.3 s:
    ``docs/PERFORMANCE.md``); then the command line as ``cli.main`` reads it."""
    if sys.argv[1:2] == ["smoke"] and not {"-h", "--help"} & set(sys.argv[2:]):
        # Only a head start: if it cannot be had (Playwright missing or broken), the run
        # starts its own driver and says what is wrong.
        with suppress(Exception):
            from smoke.driver import start_early  # noqa: PLC0415 - before anything else loads

            start_early()
    from cli.main import main as conductor  # noqa: PLC0415 - after the driver's spawn

    conductor()
