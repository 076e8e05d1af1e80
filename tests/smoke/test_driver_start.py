"""Playwright's driver (its node process): spawned before the health check's own setup, and
started with Node's compile cache in Conductor's cache directory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from smoke import Verdict
from smoke.runner import PlaywrightRunner, compile_cache_dir, start_playwright, stop_playwright
from smoke.sample_app import SampleApp
from tests.helpers import suite


async def test_the_driver_is_spawned_before_the_health_check_builds_its_client(
    monkeypatch: pytest.MonkeyPatch, sample_app: SampleApp
) -> None:
    # node loads Playwright while the health check imports httpx and builds its TLS context
    order: list[str] = []
    spawn, client = asyncio.create_subprocess_exec, httpx.AsyncClient.__init__

    async def spawning(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        order.append("driver spawned")
        return await spawn(*args, **kwargs)

    def building(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        order.append("health client built")
        client(self, *args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spawning)
    monkeypatch.setattr(httpx.AsyncClient, "__init__", building)
    result = await PlaywrightRunner().run(suite(sample_app.url, smoke=[{"path": "/"}]))
    assert result.verdict is Verdict.GREEN, result.summary
    assert order == ["driver spawned", "health client built"]


def test_the_cache_lives_under_xdg_cache_home_else_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache_dir() == tmp_path / "xdg" / "conductor" / "node-compile-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as XDG says
    assert compile_cache_dir() == tmp_path / "home" / ".cache" / "conductor" / "node-compile-cache"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compile_cache_dir() == tmp_path / "home" / ".cache" / "conductor" / "node-compile-cache"


def _cached(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


async def test_the_driver_fills_the_cache_and_the_environment_is_left_as_it_was(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("NODE_COMPILE_CACHE", raising=False)
    playwright = await start_playwright()
    assert "NODE_COMPILE_CACHE" not in os.environ  # only the driver's start saw it
    await stop_playwright(playwright)  # Node writes the cache as it exits
    assert _cached(tmp_path / "conductor" / "node-compile-cache")


async def test_a_compile_cache_already_chosen_is_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NODE_COMPILE_CACHE", str(mine))
    playwright = await start_playwright()
    assert os.environ["NODE_COMPILE_CACHE"] == str(mine)
    await stop_playwright(playwright)
    assert _cached(mine)
    assert not (tmp_path / "xdg").exists()
