"""The bootstrap's default runner: a PlaywrightRunner made at the first run, then reused."""

from __future__ import annotations

from typing import Any

import pytest

import smoke.runner
from smoke.config import AppConfig
from smoke.on_use import PlaywrightOnUse
from smoke.protocol import OnCheck
from smoke.result import SmokeResult, Verdict


class _Runner:
    made = 0

    def __init__(self) -> None:
        type(self).made += 1
        self.apps: list[Any] = []

    async def run(self, app: AppConfig, *, on_check: OnCheck | None = None) -> SmokeResult:
        self.apps.append((app, on_check))
        return SmokeResult(verdict=Verdict.GREEN, summary="fake", duration_ms=1)


async def test_the_runner_is_made_at_the_first_run_and_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(smoke.runner, "PlaywrightRunner", _Runner)
    runner = PlaywrightOnUse()
    assert _Runner.made == 0  # nothing made before a seal
    app: Any = object()
    results = [await runner.run(app), await runner.run(app, on_check=print)]
    assert [r.summary for r in results] == ["fake", "fake"] and _Runner.made == 1
