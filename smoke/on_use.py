"""The default runner of a process that may never seal: Playwright imported at its first run."""

from __future__ import annotations

import asyncio
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smoke.config import AppConfig
    from smoke.protocol import OnCheck, SmokeRunner
    from smoke.result import SmokeResult


class PlaywrightOnUse:
    """A :class:`~smoke.runner.PlaywrightRunner` made at the first ``run``: Playwright's client
    is about 8 MB of a bot's idle memory, and its import (in a worker thread, off the event
    loop) takes a tenth of a second or more."""

    def __init__(self) -> None:
        self._runner: SmokeRunner | None = None

    async def run(self, app: AppConfig, *, on_check: OnCheck | None = None) -> SmokeResult:
        if self._runner is None:
            module = await asyncio.to_thread(import_module, "smoke.runner")
            self._runner = self._runner or module.PlaywrightRunner()
        return await self._runner.run(app, on_check=on_check)
