"""The bootstrap's default runner: a PlaywrightRunner made at the first run, then reused."""

from __future__ import annotations

import asyncio
import threading
from importlib import import_module
from typing import Any

import pytest

import smoke.on_use
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


async def test_a_runner_that_cannot_be_loaded_is_an_error_and_the_next_run_tries_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``run`` never raises, even when Playwright's client cannot be imported."""
    monkeypatch.setattr(smoke.runner, "PlaywrightRunner", _Runner)

    def broken(name: str) -> Any:
        raise ImportError("No module named 'playwright'")

    monkeypatch.setattr(smoke.on_use, "import_module", broken)
    runner = PlaywrightOnUse()
    app: Any = object()
    result = await runner.run(app)
    assert result.verdict is Verdict.ERROR
    assert result.error == (
        "Playwright's client could not load: ImportError: No module named 'playwright'"
    )
    monkeypatch.setattr(smoke.on_use, "import_module", import_module)
    assert (await runner.run(app)).summary == "fake"


async def test_a_load_that_never_ends_is_an_error_on_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An import that hangs (its thread never comes back) costs the seal its bound, not the
    bot a seal that never ends."""
    release = threading.Event()

    def stuck(name: str) -> Any:
        release.wait(60)
        return import_module(name)

    monkeypatch.setattr(smoke.on_use, "import_module", stuck)
    monkeypatch.setattr(smoke.on_use, "_IMPORT_TIMEOUT", 0.5)
    app: Any = object()
    try:
        result = await asyncio.wait_for(PlaywrightOnUse().run(app), 30)
    finally:
        release.set()
    assert result.verdict is Verdict.ERROR
    assert result.error == "Playwright's client did not load within 0.5 s"
