"""``python -m bench.loopwatch run``: ``conductor run`` with its event loop watched
(:class:`bench.stalls.LoopStalls`), for ``bench.bench_wire``.

Each SIGUSR1 writes the figures since the one before (the first starts the watch) to the
JSON file ``BENCH_STALLS_FILE`` names, numbered, then starts again: the benchmark signals
before and after each phase and reads what the phase cost the bot's loop. Nothing else of
the bot changes."""

from __future__ import annotations

import dataclasses
import json
import os
import runpy
import signal
from pathlib import Path
from types import FrameType

from bench.stalls import LoopStalls


def main() -> None:
    out = Path(os.environ["BENCH_STALLS_FILE"])
    stalls = LoopStalls()
    taken = [0]

    def dump(_signum: int, _frame: FrameType | None) -> None:
        figures = dataclasses.asdict(stalls.take())
        taken[0] += 1
        stalls.on = True
        scratch = out.with_suffix(".tmp")
        scratch.write_text(json.dumps({"n": taken[0], **figures}))
        scratch.replace(out)

    signal.signal(signal.SIGUSR1, dump)
    profile_to = os.environ.get("BENCH_PROFILE")
    if not profile_to:
        runpy.run_module("cli", run_name="__main__", alter_sys=True)
        return
    # the main thread's profile (the event loop), written when the bot stops
    import cProfile  # noqa: PLC0415 - only when asked

    profile = cProfile.Profile()
    profile.enable()
    try:
        runpy.run_module("cli", run_name="__main__", alter_sys=True)
    finally:
        profile.disable()
        profile.dump_stats(profile_to)


if __name__ == "__main__":
    main()
