"""A smoke runner that answers what the test says, for the domain and the cog tests (the real
runner is tested against real pages in ``tests/smoke``)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from smoke import AppConfig, CheckResult, SmokeResult
from smoke.protocol import OnCheck

#: the [app] table the tests configure; production is never reached by the fake
TEST_APP: dict[str, Any] = {
    "name": "studio",
    "production_url": "http://127.0.0.1:9",
    "health_path": "/up",
    "rollback_command": "git revert -m 1 {merge_sha} && bin/deploy {release} {version}",
    "smoke": [
        {"path": "/", "expect_text": "Studio"},
        {"path": "/signin", "selector": "form input[type=password]"},
        {"path": "/tasks", "selector": "ul.tasks li"},
        {"path": "/tasks", "expect_text": "Tasks"},
        {"path": "/devops", "expect_status": 404},
    ],
}


def green(app: AppConfig) -> SmokeResult:
    checks = [CheckResult(app.health_path, True, kind="health", status=200)]
    checks += [CheckResult(c.path, True, status=c.expect_status) for c in app.smoke]
    return SmokeResult.from_checks(tuple(checks), 1234)


def red(app: AppConfig, failures: dict[str, str]) -> SmokeResult:
    """``failures``: path → reason; the health path fails too when named."""
    paths = [app.health_path, *(c.path for c in app.smoke)]
    checks = [
        CheckResult(
            p, p not in failures, kind="health" if i == 0 else "page", reason=failures.get(p)
        )
        for i, p in enumerate(paths)
    ]
    return SmokeResult.from_checks(tuple(checks), 2345)


class FakeRunner:
    """Green unless told otherwise. ``gate`` holds a run until set (concurrency tests)."""

    def __init__(self) -> None:
        self.calls: list[AppConfig] = []
        self.queued: deque[SmokeResult | Exception | dict[str, str]] = deque()
        self.gate: asyncio.Event | None = None
        #: set as soon as a run starts
        self.started = asyncio.Event()

    def then(self, outcome: SmokeResult | Exception | dict[str, str]) -> None:
        """The next run returns this result, raises this exception, or fails these paths."""
        self.queued.append(outcome)

    async def run(self, app: AppConfig, *, on_check: OnCheck | None = None) -> SmokeResult:
        self.calls.append(app)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        outcome = self.queued.popleft() if self.queued else None
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, SmokeResult):
            return outcome
        if isinstance(outcome, dict):
            return red(app, outcome)
        return green(app)
