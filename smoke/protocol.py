"""What the domain needs of a smoke runner: one call that never raises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from smoke.config import AppConfig
from smoke.result import CheckResult, SmokeResult

#: called once per check as it finishes (the CLI's progress display)
OnCheck = Callable[[CheckResult], None]


class SmokeRunner(Protocol):
    async def run(self, app: AppConfig, *, on_check: OnCheck | None = None) -> SmokeResult:
        """Run every check of ``app`` against its production URL. Never raises: a runner that
        cannot run returns verdict ``error`` with the reason."""
        ...
