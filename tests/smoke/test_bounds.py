"""Every wait of a seal on a peer is bounded: Playwright's driver, Chromium, the dead end's
thread. A peer that never answers is a clear ``error`` verdict on time, never a seal that waits
forever, and what was started for it is stopped.

Each test would wait forever without its bound: each is run under an outer ``wait_for`` so
that it fails instead.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from smoke import Verdict, readonly, runner
from smoke.readonly import DeadEnd, LaunchError, ReadOnlyGuard, read_only_browser
from smoke.runner import PlaywrightRunner
from smoke.sample_app import SampleApp
from tests.helpers import suite

#: seconds a test waits before it calls a bounded wait unbounded (far past every bound here)
OUTER = 60.0


async def _never(*args: object, **kwargs: object) -> Any:
    """A peer that takes the call and never answers."""
    await asyncio.Event().wait()


def _state(pid: int) -> str | None:
    """The process's state letter (``Z``: dead, not yet reaped), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


async def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _state(pid) in (None, "Z"):
            return True
        await asyncio.sleep(0.05)
    return False


# -- Playwright's driver -------------------------------------------------------------------------


@pytest.fixture
def silent_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Playwright's node replaced by a process that starts, takes the driver's arguments and
    never answers (nor exits when its stdin closes); where it writes its pid."""
    pid_file = tmp_path / "driver.pid"
    fake = tmp_path / "node"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(600)\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PLAYWRIGHT_NODEJS_PATH", str(fake))
    yield pid_file
    if pid_file.exists():  # whatever the test made of it, it does not outlive the test
        pid = int(pid_file.read_text())
        if _state(pid) not in (None, "Z"):
            os.kill(pid, 9)


async def test_a_driver_that_never_answers_is_an_error_and_is_stopped(
    silent_driver: Path, sample_app: SampleApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "_LAUNCH_TIMEOUT", 2.0)
    started = time.perf_counter()
    result = await asyncio.wait_for(PlaywrightRunner().run(suite(sample_app.url)), OUTER)
    took = time.perf_counter() - started

    assert result.verdict is Verdict.ERROR
    assert result.error == "Playwright could not start: its driver did not answer within 2 s"
    assert took < 2.0 + 10  # its bound, and the health check beside it
    # the driver it gave up on is not left running
    assert await _gone(int(silent_driver.read_text()))


# -- Chromium's launch and setup -----------------------------------------------------------------


async def test_a_launch_the_driver_never_answers_is_a_launch_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The driver times a launch itself; one that never replies at all costs the launch
    timeout and a little more, and the dead end and the profile are cleaned up."""
    monkeypatch.setattr(readonly, "_DRIVER_SLACK", 0.5)
    profiles: list[Path] = []

    async def launch(profile: Path, **kwargs: object) -> Any:
        profiles.append(Path(profile))
        await _never()

    playwright: Any = SimpleNamespace(chromium=SimpleNamespace(launch_persistent_context=launch))
    started = time.perf_counter()
    with pytest.raises(LaunchError) as raised:
        async with (
            asyncio.timeout(OUTER),
            read_only_browser(playwright, "/usr/bin/chromium-headless-shell", launch_timeout=1.0),
        ):
            pytest.fail("a browser that never launched was handed out")
    assert str(raised.value) == (
        "Chromium at /usr/bin/chromium-headless-shell did not start within 1 s"
        " (Playwright's driver did not answer)"
    )
    assert time.perf_counter() - started < 1.0 + 0.5 + 5
    (profile,) = profiles
    assert not profile.exists()  # the temporary profile was removed
    assert not [t for t in threading.enumerate() if t.name == "smoke-dead-end"]


async def test_routes_chromium_never_takes_are_an_error_and_the_browser_is_closed(
    sample_app: SampleApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real Chromium, up, whose routes (CDP's Fetch domain, the binding, the init script)
    are never confirmed: the seal is an error on time, and the browser is closed."""
    monkeypatch.setattr(readonly, "_SETUP_TIMEOUT", 1.0)
    monkeypatch.setattr(ReadOnlyGuard, "install", _never)
    closed: list[object] = []
    close = readonly.close_read_only

    async def closing(context: Any, guard: ReadOnlyGuard) -> None:
        closed.append(context)
        await close(context, guard)

    monkeypatch.setattr(readonly, "close_read_only", closing)
    result = await asyncio.wait_for(PlaywrightRunner().run(suite(sample_app.url)), OUTER)

    assert result.verdict is Verdict.ERROR
    assert result.error == "Chromium did not take the read-only routes within 1 s"
    assert len(closed) == 1  # the context was led out and closed, not left to the driver
    assert sample_app.requests == [("GET", "/up")]  # no page was loaded unguarded


# -- the dead end's thread -----------------------------------------------------------------------


async def test_a_dead_end_that_never_listens_is_a_launch_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its thread ends without a word (it died before it could say): the starter stops
    waiting, with a reason."""
    monkeypatch.setattr(readonly, "_START_TIMEOUT", 0.5)
    monkeypatch.setattr(DeadEnd, "_serve", lambda self, started: None)
    with pytest.raises(LaunchError, match=r"^the browser's dead-end proxy did not start within"):
        await asyncio.wait_for(DeadEnd().start(), OUTER)


async def test_a_dead_end_whose_thread_fails_says_why_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: object, **kwargs: object) -> Any:
        raise RuntimeError("no sockets today")

    dead_end = DeadEnd()
    monkeypatch.setattr(asyncio, "start_server", broken)  # the dead end's thread calls it
    started = time.perf_counter()
    with pytest.raises(LaunchError) as raised:
        await asyncio.wait_for(dead_end.start(), OUTER)
    assert str(raised.value) == "the browser's dead-end proxy could not start: no sockets today"
    assert time.perf_counter() - started < readonly._START_TIMEOUT  # not its timeout: at once
    await dead_end.close()
