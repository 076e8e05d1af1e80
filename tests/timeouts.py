"""What a hung test leaves behind, and how it ends (with pytest-timeout).

pytest-timeout (``timeout`` in pyproject's pytest options) fails a test that runs past it: its
``signal`` method raises in the test's own thread (an event loop's ``select()`` too), so the
test fails with where it stood and the run goes on in the same worker. (Its ``thread`` method
ends the whole process instead, and under ``--dist loadfile`` xdist hands the test's file, the
hung test with it, to the worker that replaces it: the same hang again, worker after worker.)

Two things it does not do, done here:

- **what it waited for.** A little before the timeout, every thread's stack and every running
  event loop's timers and tasks (each task as the chain of awaits it is suspended in; identical
  chains counted once: a seal can have thousands of route handlers in flight) are written to
  the real stderr, capture suspended: under xdist, pytest-timeout's own dump goes to a worker's
  terminal, which nobody sees.
- **a test that does not end when told to** (stuck in C code that never looks at signals, or
  in a teardown that waits again): :data:`LAST_RESORT` seconds after the timeout, the stacks
  are written again and the process ends (``os._exit(1)``). Under xdist the test is noted for
  the run, and the worker that replaces this one fails it at once instead of running it again.

A plugin of the whole suite, ``tests/`` and ``e2e/`` alike: the root ``conftest.py`` names it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import threading
import traceback
from collections import Counter
from pathlib import Path
from types import CoroutineType
from typing import Any, TextIO

import pytest

#: seconds before the timeout that the stacks and the event loops are written
AHEAD = 10.0
#: seconds past the timeout after which a test that has not ended ends its process
LAST_RESORT = 120.0
#: the most distinct await chains written per loop (the largest groups first)
MOST_CHAINS = 40

_TIMERS = pytest.StashKey[list[threading.Timer]]()


def _chain(task: asyncio.Task[Any]) -> str:
    """Where ``task`` is suspended: its coroutine and each it awaits in turn, innermost last."""
    lines: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(lines) < 60:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        if frame is None:
            frame = getattr(awaited, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            lines.append(f"    {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        if isinstance(awaited, CoroutineType):
            awaited = awaited.cr_await
        else:
            awaited = getattr(awaited, "ag_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines) or "    (no frame: done, or not started)"


def dump_threads(out: TextIO) -> None:
    """Every thread's stack but the caller's."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        out.write(f"\n~~~ thread {names.get(ident, '?')} ({ident})\n")
        out.write("".join(traceback.format_stack(frame)))


def dump_loops(out: TextIO) -> None:
    """Every running event loop's timers and tasks (from any thread: a look, not a change; a
    loop that moves meanwhile may show a torn picture)."""
    loops = [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, asyncio.AbstractEventLoop) and obj.is_running()
    ]
    for loop in loops:
        now = loop.time()
        scheduled = sorted(getattr(loop, "_scheduled", ()), key=lambda handle: handle.when())
        out.write(f"\n~~~ event loop {loop!r}: {len(scheduled)} timers\n")
        for handle in scheduled[:20]:
            out.write(f"  in {handle.when() - now:9.1f} s: {handle!r}\n")
        try:
            tasks = list(asyncio.all_tasks(loop))
        except RuntimeError as error:  # the loop changed its tasks while they were read
            out.write(f"  (its tasks could not be read: {error})\n")
            continue
        chains = Counter(_chain(task) for task in tasks)
        out.write(f"  {len(tasks)} tasks, {len(chains)} distinct await chains:\n")
        for chain, count in chains.most_common(MOST_CHAINS):
            out.write(f"  -- {count} x\n{chain}\n")


def _ended_file() -> Path | None:
    """Where this xdist run notes the tests that ended their worker (None outside xdist: no
    worker replaces the process)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    return Path(tempfile.gettempdir()) / f"conductor-tests-ended-{run}" if run else None


def _dump(item: pytest.Item, why: str, *, end: bool = False) -> None:
    capture = item.config.pluginmanager.getplugin("capturemanager")
    try:
        if capture is not None:
            capture.suspend_global_capture()  # stderr is the run's own again, xdist or not
        out = sys.stderr
        out.write(f"\n+++ {item.nodeid}: {why} +++\n")
        try:
            dump_threads(out)
            dump_loops(out)
        except Exception as error:  # a diagnostic: never the reason a run goes wrong
            out.write(f"(could not be dumped: {error!r})\n")
        out.write(f"+++ end of {item.nodeid}'s threads and event loops +++\n")
        out.flush()
    finally:
        if end:
            if (ended := _ended_file()) is not None:
                with ended.open("a", encoding="utf-8") as notes:
                    notes.write(item.nodeid + "\n")
            os._exit(1)
        if capture is not None:
            capture.resume_global_capture()


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """Arm the dump :data:`AHEAD` of the timeout and, for the ``signal`` method, the end of
    the process :data:`LAST_RESORT` after it (pytest-timeout's own timer is armed next: this
    returns None)."""
    timeout = float(getattr(settings, "timeout", 0) or 0)
    if timeout <= 0:
        return
    timers = [
        threading.Timer(
            max(timeout - AHEAD, timeout / 2),
            _dump,
            (item, f"still running {timeout - AHEAD:g} s before its {timeout:g} s timeout"),
        )
    ]
    if getattr(settings, "method", None) == "signal":
        why = f"did not end {LAST_RESORT:g} s after its {timeout:g} s timeout: ending the process"
        timers.append(
            threading.Timer(timeout + LAST_RESORT, _dump, (item, why), {"end": True}),
        )
    for timer in timers:
        timer.name = f"timeout of {item.nodeid}"
        timer.daemon = True
        timer.start()
    item.stash[_TIMERS] = timers


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    for timer in item.stash.get(_TIMERS, []):
        timer.cancel()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that ended a worker of this run (:data:`LAST_RESORT`) fails at once in the
    worker that replaced it: xdist hands it the hung test's whole file again."""
    ended = _ended_file()
    if (
        ended is not None
        and ended.exists()
        and item.nodeid in ended.read_text(encoding="utf-8").splitlines()
    ):
        pytest.fail(
            "not run again: it did not end after its timeout and ended its worker"
            " (its stacks are in the run's output)",
            pytrace=False,
        )
