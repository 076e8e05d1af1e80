"""Playwright's driver (its node process): spawned before the health check's own setup, and
started with Node's compile cache in Conductor's cache directory. The console script spawns it
before the command's own code loads, and stops it whatever becomes of the run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from smoke import Verdict
from smoke.driver import compile_cache_dir
from smoke.runner import PlaywrightRunner, start_playwright, stop_playwright
from smoke.sample_app import SampleApp, config_toml, sample_app_table
from tests.helpers import clean_env, suite


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


# -- the console script: the driver first ----------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]

#: ``conductor ARGS`` as the console script runs it (``cli.main``), noting each spawn of
#: Playwright's driver: what was loaded by then, the compile cache it got, and on the way out
#: (after the driver was released) whether its process is still there
_PROBE = r"""
import atexit, json, os, subprocess, sys

spawns = []
popen = subprocess.Popen.__init__

def spawning(self, args, *rest, **kwargs):
    if "run-driver" not in args:
        return popen(self, args, *rest, **kwargs)
    # the fork of node itself: what was loaded by then
    watched = ("typer", "rich", "pydantic", "cli.main", "smoke.config", "smoke.runner")
    popen(self, args, *rest, **kwargs)
    spawns.append({
        "pid": self.pid,
        "loaded": [name for name in watched if name in sys.modules],
        "cache": (kwargs.get("env") or {}).get("NODE_COMPILE_CACHE"),
    })

subprocess.Popen.__init__ = spawning

def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None

atexit.register(lambda: print("PROBE " + json.dumps({
    "spawns": spawns,
    "left": [state(spawned["pid"]) for spawned in spawns],
    "environ_cache": os.environ.get("NODE_COMPILE_CACHE"),
}), file=sys.stderr))
sys.argv = ["conductor", *sys.argv[1:]]
from cli import main
main()
"""


def _probe(
    tmp_path: Path, *args: str, script: str = _PROBE
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = clean_env(tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(ROOT))
    env.pop("NODE_COMPILE_CACHE", None)
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stderr.splitlines()
    probe = json.loads(lines[-1].removeprefix("PROBE "))
    return done, probe


def _config(tmp_path: Path, table: dict[str, Any]) -> str:
    file = tmp_path / "suite.toml"
    file.write_text(config_toml({"app": table}), encoding="utf-8")
    return str(file)


def test_the_console_script_spawns_the_driver_before_the_command_s_code_loads(
    sample_app: SampleApp, tmp_path: Path
) -> None:
    config = _config(tmp_path, sample_app_table(sample_app.url))
    done, probe = _probe(tmp_path, "smoke", sample_app.url, "--config", config)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "6/6 checks passed" in done.stdout
    # one driver, spawned before typer, rich, pydantic or the suite's code was imported, and
    # the one the run used
    assert len(probe["spawns"]) == 1, probe
    assert probe["spawns"][0]["loaded"] == []
    cache = tmp_path / "xdg" / "conductor" / "node-compile-cache"
    assert probe["spawns"][0]["cache"] == str(cache)
    assert probe["environ_cache"] is None  # only node's start saw it
    assert any(path.is_file() for path in cache.rglob("*"))
    assert probe["left"] == [None]  # stopped and reaped before the process ended
    assert done.stderr.splitlines()[:-1] == []


@pytest.mark.parametrize(
    ("case", "status"),
    [("broken config", 2), ("no page checks", 0), ("production unreachable", 1)],
)
def test_a_driver_spawned_early_is_stopped_whatever_becomes_of_the_run(
    sample_app: SampleApp, tmp_path: Path, case: str, status: int
) -> None:
    if case == "broken config":
        file = tmp_path / "suite.toml"
        file.write_text("[app]\nproduction_url = 'ftp://nowhere'\n", encoding="utf-8")
        args = ["smoke", sample_app.url, "--config", str(file)]
    elif case == "no page checks":
        config = _config(tmp_path, sample_app_table(sample_app.url, smoke=[]))
        args = ["smoke", sample_app.url, "--config", config]
    else:
        config = _config(tmp_path, sample_app_table("http://127.0.0.1:9"))
        args = ["smoke", "http://127.0.0.1:9", "--config", config]
    done, probe = _probe(tmp_path, *args)

    assert done.returncode == status, done.stdout + done.stderr
    assert len(probe["spawns"]) == 1, probe
    assert probe["left"] == [None], probe  # not left to die when its pipe closes
    said = "\n".join(done.stderr.splitlines()[:-1])
    for noise in ("Traceback", "Task was destroyed", "never awaited", "Exception ignored"):
        assert noise not in said, said
    if case == "broken config":
        assert said.startswith("error:") and "\n" not in said, said


def test_help_spawns_no_driver(tmp_path: Path) -> None:
    done, probe = _probe(tmp_path, "smoke", "--help")
    assert done.returncode == 0
    assert "URL" in done.stdout
    assert probe["spawns"] == []


def test_a_head_start_that_fails_costs_nothing_but_the_head_start(
    sample_app: SampleApp, tmp_path: Path
) -> None:
    """The early start is only a head start: when it cannot be had, the run starts its own
    driver and the seal is the same."""
    config = _config(tmp_path, sample_app_table(sample_app.url))
    broken = _PROBE.replace(
        "from cli import main\n",
        "import smoke.driver\n"
        "def broken():\n"
        "    raise RuntimeError('no head start')\n"
        "smoke.driver.start_early = broken\n"
        "from cli import main\n",
    )
    assert broken != _PROBE
    done, probe = _probe(tmp_path, "smoke", sample_app.url, "--config", config, script=broken)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "6/6 checks passed" in done.stdout
    assert len(probe["spawns"]) == 1  # the run's own, once the command's code had loaded
    assert "smoke.runner" in probe["spawns"][0]["loaded"]
    assert probe["left"] == [None]
