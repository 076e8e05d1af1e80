"""Where the wall time of ``conductor smoke`` goes, phase by phase, for the six sample checks.

    .venv/bin/python -m bench.smoke_breakdown [--runs 5] [--chromium PATH]

Each run is a fresh interpreter that runs the ``conductor`` entry point as the console script
does (Playwright's driver spawned first, :func:`smoke.driver.start_early`, then ``cli.main``),
against the local sample app, with the runner's steps wrapped to note when each starts and
ends. The parent times the whole process, so what is left outside the interpreter (its start
and its exit) shows too. The Python side's own CPU and that of its
children (Playwright's node driver and Chromium) close the table. Runs alternate with a bare
interpreter start; medians over ``--runs``. The Chromium is ``conductor smoke``'s default
(:func:`smoke.config.default_chromium`) unless ``--chromium`` names another. A measuring tool,
not a target: no exit status.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_playwright_test import ROOT, app_toml
from smoke.config import default_chromium
from smoke.sample_app import sample_app_table, serve_in_thread

#: runs in the child: wraps the runner's steps, then runs `conductor smoke URL --config FILE`
PROBE = r"""
import json, resource, sys, time
started = time.perf_counter()
marks = {}

def note(name, begun):
    marks.setdefault(name, []).append((begun - started, time.perf_counter() - started))

# what the console script (cli.main) does first: spawn Playwright's driver
import smoke.driver
smoke.driver.start_early()
spawned = time.perf_counter() - started
marks["driver spawn (imports Playwright)"] = [(0.0, spawned)]
import cli.smoke
from cli.main import main as conductor
import smoke.readonly as readonly
import smoke.runner as runner
marks["imports"] = [(spawned, time.perf_counter() - started)]
from playwright.async_api import BrowserType

def wrap(owner, attribute, name):
    original = getattr(owner, attribute)
    async def wrapped(*args, **kwargs):
        begun = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            note(name, begun)
    setattr(owner, attribute, wrapped)

wrap(runner, "start_playwright", "waiting for the driver")
wrap(runner, "check_health", "health check")
wrap(BrowserType, "launch_persistent_context", "Chromium launch")
wrap(readonly.ReadOnlyGuard, "install", "read-only routes")
wrap(runner, "check_page", "pages")
wrap(readonly, "close_read_only", "browser close")
wrap(runner, "stop_driver", "driver stop")
sys.argv = ["conductor", "smoke", sys.argv[1], "--config", sys.argv[2]]
try:
    conductor()
except SystemExit as done:
    code = done.code
ended = time.perf_counter() - started
me = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "code": code, "marks": marks, "ended": ended,
    "cpu_python": me.ru_utime + me.ru_stime, "cpu_children": kids.ru_utime + kids.ru_stime,
}), file=sys.stderr)
"""

PHASES = (
    "driver spawn (imports Playwright)",
    "imports",
    "health check",
    "waiting for the driver",
    "Chromium launch",
    "read-only routes",
    "pages",
    "browser close",
    "driver stop",
)


def once(url: str, config: Path, cwd: Path) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", PROBE, url, str(config)],
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    whole = time.perf_counter() - started
    report = json.loads(done.stderr.strip().splitlines()[-1])
    if report["code"] != 0:
        raise SystemExit(f"conductor smoke was not green:\n{done.stdout}")
    spans: dict[str, list[tuple[float, float]]] = report["marks"]
    row = {"whole process": whole, "in the interpreter": report["ended"]}
    for phase in PHASES:
        begun = min(start for start, _ in spans[phase])
        ended = max(end for _, end in spans[phase])
        row[phase] = ended - begun
        row[f"{phase} (ends at)"] = ended
    row["report and the interpreter's exit"] = whole - max(
        end for span in spans.values() for _, end in span
    )
    row["CPU: Python"] = report["cpu_python"]
    row["CPU: node driver + Chromium"] = report["cpu_children"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", help="the Chromium (default: conductor smoke's own)")
    args = parser.parse_args()
    overrides = {"chromium_path": args.chromium} if args.chromium else {}
    rows: list[dict[str, float]] = []
    bare: list[float] = []
    with serve_in_thread() as sample, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "six.toml"
        config.write_text(app_toml(sample_app_table(sample.url, **overrides)), encoding="utf-8")
        once(sample.url, config, Path(tmp))  # warm the caches, not counted
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - started)
            rows.append(once(sample.url, config, Path(tmp)))
    chromium = args.chromium or default_chromium()
    print(f"conductor smoke, 6 checks on the sample app in {chromium}: medians of {args.runs} runs")
    print(f"{'interpreter start (python -c pass)':44s} {statistics.median(bare) * 1000:6.0f} ms")
    for name in rows[0]:
        if name.endswith("(ends at)"):
            continue
        median = statistics.median(row[name] for row in rows)
        unit = f"{median:6.2f} s " if name.startswith("CPU") else f"{median * 1000:6.0f} ms"
        ends = f"{name} (ends at)"
        at = (
            f"  ends at {statistics.median(row[ends] for row in rows) * 1000:5.0f} ms"
            if ends in rows[0]
            else ""
        )
        print(f"{name:44s} {unit}{at}")


if __name__ == "__main__":
    main()
