"""The default runner of a process that may never seal: Playwright imported at its first run."""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import import_module
from typing import TYPE_CHECKING

from smoke.result import SmokeResult

if TYPE_CHECKING:
    from smoke.config import AppConfig
    from smoke.protocol import OnCheck, SmokeRunner

log = logging.getLogger(__name__)

#: seconds the import of the runner (and Playwright's client) may take before the seal is an
#: error; it takes a tenth of a second, a few on a loaded machine
_IMPORT_TIMEOUT = 60.0


class PlaywrightOnUse:
    """A :class:`~smoke.runner.PlaywrightRunner` made at the first ``run``: Playwright's client
    is about 8 MB of a bot's idle memory, and its import (in a worker thread, off the event
    loop) takes a tenth of a second or more.

    Like every runner, ``run`` never raises (cancellation aside): a runner that cannot be
    imported, or whose import has not finished within :data:`_IMPORT_TIMEOUT` (an import that
    hangs, a thread that never comes back), is verdict ``error``, and the next run tries
    again."""

    def __init__(self) -> None:
        self._runner: SmokeRunner | None = None

    async def run(self, app: AppConfig, *, on_check: OnCheck | None = None) -> SmokeResult:
        if self._runner is None:
            started = time.perf_counter()
            try:
                module = await asyncio.wait_for(
                    asyncio.to_thread(import_module, "smoke.runner"), _IMPORT_TIMEOUT
                )
            except TimeoutError:
                return SmokeResult.failure(
                    f"Playwright's client did not load within {_IMPORT_TIMEOUT:g} s",
                    round((time.perf_counter() - started) * 1000),
                )
            except Exception as error:
                log.exception("the smoke runner could not be imported")
                return SmokeResult.failure(
                    f"Playwright's client could not load: {type(error).__name__}: {error}",
                    round((time.perf_counter() - started) * 1000),
                )
            self._runner = self._runner or module.PlaywrightRunner()
        return await self._runner.run(app, on_check=on_check)
